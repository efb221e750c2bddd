"""Chat turns: router, agent loop with tools, conversation memory, spend caps (`hub.chat`)."""
