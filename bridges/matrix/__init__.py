"""The Matrix bridge: an E2EE bot (matrix-nio) in front of the hub's chat service and skills.

Depends on `hub` only; the hub loads it through the `sovhub.bridges` entry point. See DESIGN.md.
"""
