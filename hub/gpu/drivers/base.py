"""What the runtime needs from a way of running a model server: start, stop, life and logs."""

from __future__ import annotations

from typing import Protocol

from hub.errors import HubError


class DriverError(HubError):
    """A driver could not do what it was asked (the message says what and why)."""


class Driver(Protocol):
    name: str

    async def start(self) -> None:
        """Begin starting the server (returns before it is ready)."""

    async def stop(self, timeout: float) -> None:
        """Stop it: graceful first, forced after `timeout` seconds."""

    async def is_running(self) -> bool:
        """Whether the server's process/container is alive (says nothing about readiness)."""

    async def output_since(self, since: float) -> str:
        """Log output written since the epoch time `since` (stall detection: fresh output = progress)."""

    async def tail(self, lines: int = 30) -> str:
        """The last lines of its log, for error messages."""
