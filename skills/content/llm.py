"""Local-only text generation for the content skills: notes and articles never go to the cloud."""

from __future__ import annotations

from hub.jobs import SkillRun
from hub.llm.local import LocalProvider
from hub.llm.types import Message


async def local_complete(run: SkillRun, system: str, user: str, *, max_tokens: int) -> str:
    """Through the chat service's local-only helper when present, else straight to the local server."""
    chat = getattr(run.hub, "chat", None)
    if chat is not None and hasattr(chat, "complete"):
        messages = [Message("system", system), Message("user", user)]
        return await chat.complete(messages, route="local", max_tokens=max_tokens, context=run.context)
    cfg = run.config.llm.local
    provider = LocalProvider(
        base_url=cfg.base_url,
        model=cfg.model,
        api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
        first_token_timeout_s=cfg.first_token_timeout_s,
        stall_timeout_s=cfg.stall_timeout_s,
        max_retries=cfg.max_retries,
    )

    async def ignore(_: str) -> None:
        return None

    try:
        completion = await provider.stream(
            [Message("system", system), Message("user", user)], [], max_tokens=max_tokens, on_text=ignore
        )
    finally:
        await provider.aclose()
    return completion.text
