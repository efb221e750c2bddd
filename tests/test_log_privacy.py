"""Logs keep private text out: at DEBUG no chat text and no SQL parameters are written, and secrets
are masked in messages, exception text and tracebacks alike."""

from __future__ import annotations

import logging

import pytest

from hub.logs import collect_secrets, setup_logging
from tests.chat_helpers import chat_bed

MARKER = "zebra-diary-7781"


@pytest.fixture
def debug_log(tmp_path):
    path = tmp_path / "hub.log"
    yield path
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_sovhub", False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.WARNING)


class Seen(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(record.getMessage())


async def test_debug_logging_writes_no_chat_text_and_no_sql_parameters(tmp_path, debug_log):
    async with chat_bed(tmp_path) as bed:
        setup_logging("DEBUG", collect_secrets(bed.hub.config), str(debug_log))
        witness = Seen()  # what the libraries would have written: the test is not vacuous
        for name in ("aiosqlite", "anthropic", "openai"):
            logging.getLogger(name).addHandler(witness)
            logging.getLogger(name).setLevel(logging.DEBUG)
        try:
            await bed.turn(f"remember {MARKER} for me")
            await bed.turn(f"!claude what about {MARKER}?")
            await bed.hub.chat.settled()
            logging.getLogger("hub.test").debug("debug lines from the hub itself are written")
        finally:
            for name in ("aiosqlite", "anthropic", "openai"):
                logging.getLogger(name).removeHandler(witness)
    assert any(MARKER in t for t in witness.texts)  # the SDKs and aiosqlite do log it at DEBUG
    text = debug_log.read_text()
    assert "debug lines from the hub itself are written" in text
    assert MARKER not in text and "INSERT INTO messages" not in text and "sk-test" not in text


def test_secrets_are_masked_in_exception_text_and_tracebacks(debug_log):
    secret = "sk-ant-very-secret-0042"
    setup_logging("INFO", [secret], str(debug_log))
    log = logging.getLogger("hub.test")
    try:
        try:
            raise ValueError(f"the provider refused key {secret}")
        except ValueError as exc:
            raise RuntimeError(f"call with {secret} failed") from exc
    except RuntimeError:
        log.exception("request failed")
    logging.getLogger("anthropic.client").warning("retrying with %s", secret)  # third-party at WARNING
    log.info("stack", stack_info=True, extra={"x": secret})
    text = debug_log.read_text()
    assert secret not in text
    assert "the provider refused key ***" in text and "call with *** failed" in text
    assert "Traceback" in text and "retrying with ***" in text
