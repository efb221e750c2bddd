"""`logging:` level and destination."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from hub.config.base import Section


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    file: Path | None = None
    json_lines: bool = False
