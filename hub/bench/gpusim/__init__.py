"""The GPU simulator behind `sovhub bench gpu`: workload traces, baseline policies (llama-swap, Ollama),
an offline lower bound, and a discrete-event simulation that drives the real pure policy
(`hub.gpu.policy.decide`) on a simulated clock. Nothing in the runtime imports it."""
