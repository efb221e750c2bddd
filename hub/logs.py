"""Logging set-up with secret redaction: no configured secret ever reaches a log line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from pydantic import BaseModel, SecretStr

REDACTED = "***"


def collect_secrets(model: BaseModel) -> set[str]:
    found: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            if len(secret) >= 4:
                found.add(secret)
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
            for extra in (value.__pydantic_extra__ or {}).values():
                walk(extra)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    walk(model)
    return found


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        cleaned = message
        for secret in self.secrets:
            cleaned = cleaned.replace(secret, REDACTED)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(level: str = "INFO", secrets: Iterable[str] = (), file: str | None = None,
                  debug: bool = False) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_sovhub", False):
            root.removeHandler(handler)
    handler: logging.Handler = logging.FileHandler(file) if file else logging.StreamHandler(sys.stderr)
    handler._sovhub = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root.addHandler(handler)
    root.setLevel("DEBUG" if debug else level)
    for noisy in ("httpx", "httpx2", "httpcore", "nio", "apscheduler", "docker", "urllib3", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
