"""Logging set-up with secret redaction: no configured secret ever reaches a log line.

Redaction is applied to the whole formatted record — message, exception text and traceback,
stack info — so a secret inside an exception (a URL with a key, a refused token) is masked too.
Private text stays out at DEBUG as well: DEBUG records are written only from the hub's own
packages, which never log chat text; third-party DEBUG output (the LLM SDKs log request bodies,
aiosqlite logs every statement with its parameters, the MCP SDK logs messages) is dropped.
"""

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


OWN_PACKAGES = ("hub", "bridges", "skills", "sovhub", "__main__")


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


class RedactSecrets(logging.Filter):
    """Masks secrets in the message, the exception text and the stack of every record it passes."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


class RedactingFormatter(logging.Formatter):
    """The last line of defence: whatever ends up in the formatted text is masked."""

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


class OwnDebugOnly(logging.Filter):
    """DEBUG records pass only from the hub's own packages (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO or record.name.split(".", 1)[0] in OWN_PACKAGES


def setup_logging(level: str = "INFO", secrets: Iterable[str] = (), file: str | None = None,
                  debug: bool = False) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_sovhub", False):
            root.removeHandler(handler)
    handler: logging.Handler = logging.FileHandler(file) if file else logging.StreamHandler(sys.stderr)
    handler._sovhub = True  # type: ignore[attr-defined]
    secrets = list(secrets)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets))
    handler.addFilter(OwnDebugOnly())
    handler.addFilter(RedactSecrets(secrets))
    root.addHandler(handler)
    root.setLevel("DEBUG" if debug else level)
    for noisy in ("httpx", "httpx2", "httpcore", "nio", "apscheduler", "docker", "urllib3", "uvicorn.access",
                  "aiosqlite", "openai", "anthropic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
