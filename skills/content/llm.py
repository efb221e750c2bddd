"""Local-only text generation for the content skills: notes and articles never go to the cloud."""

from __future__ import annotations

from hub.jobs import SkillRun
from hub.llm.factory import local_provider
from hub.llm.types import Message


async def local_complete(run: SkillRun, system: str, user: str, *, max_tokens: int) -> str:
    """Through the chat service's local-only helper when present, else straight to the local server."""
    chat = getattr(run.hub, "chat", None)
    if chat is not None and hasattr(chat, "complete"):
        messages = [Message("system", system), Message("user", user)]
        return await chat.complete(messages, route="local", max_tokens=max_tokens, context=run.context)
    provider = local_provider(run.config.llm.local)

    async def ignore(_: str) -> None:
        return None

    try:
        completion = await provider.stream(
            [Message("system", system), Message("user", user)], [], max_tokens=max_tokens, on_text=ignore
        )
    finally:
        await provider.aclose()
    return completion.text
