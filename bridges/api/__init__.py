"""The gateway: an OpenAI-compatible `/v1` and an Anthropic-compatible `/v1/messages` on the hub."""
