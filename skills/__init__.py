"""The skills: each module registers skills into the hub registry. Depends on hub only."""
