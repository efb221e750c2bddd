"""Protocol-exact stand-ins for GPU/cloud backends (SGLang, Anthropic, ComfyUI, vllm-omni)."""
