#!/usr/bin/env bash
# Download the weights into the sovhub volumes (run once, on the box, with internet):
#   docker compose --profile setup run --rm fetch-models
# The NVFP4 release omits config.json and the tokenizer files: they are copied from the base repo,
# and config.json then gets the NVFP4 quantization_config (from hf_quant_config.json) or the
# script fails: without it SGLang would load the 4-bit weights as bf16.
set -euo pipefail
if [ -s /run/secrets/hf_token ]; then export HF_TOKEN="$(cat /run/secrets/hf_token)"; fi

base=mistralai/Mistral-Small-4-119B-2603
nvfp4=/models/Mistral-Small-4-119B-2603-NVFP4
hf download "${base}-NVFP4" --local-dir "$nvfp4"
hf download "${base}-eagle" --local-dir /models/Mistral-Small-4-119B-2603-eagle
for f in config.json tokenizer.json tokenizer_config.json; do
  [ -s "$nvfp4/$f" ] || hf download "$base" "$f" --local-dir "$nvfp4"
done
python3 /nvfp4.py complete "$nvfp4"

hf download mistralai/Voxtral-4B-TTS-2603        # into the shared Hugging Face cache

mkdir -p /comfyui-models/checkpoints
hf download Comfy-Org/flux1-schnell flux1-schnell-fp8.safetensors --local-dir /comfyui-models/checkpoints
echo "weights are in place"
