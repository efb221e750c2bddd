"""The agent loop: ask the model, run the tools it asks for (in parallel), feed results back.

Provider choice, failover, streaming and spend checks live in the caller's `call`; tool execution
(permission, approval, errors as results) in `execute`. The loop only sequences them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hub.llm.types import Completion, Message, ToolCall, ToolSpec, Usage

Call = Callable[[list[Message], list[ToolSpec]], Awaitable[Completion]]
Execute = Callable[[ToolCall], Awaitable[Message]]


@dataclass
class AgentResult:
    texts: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    steps: int = 0
    tool_calls: list[str] = field(default_factory=list)
    hit_max_steps: bool = False

    @property
    def text(self) -> str:
        return "\n\n".join(t for t in self.texts if t.strip())


async def run_agent(messages: list[Message], tools: list[ToolSpec], *, call: Call, execute: Execute,
                    max_steps: int) -> AgentResult:
    result = AgentResult()
    for _ in range(max_steps):
        completion = await call(messages, tools)
        result.steps += 1
        result.usage.add(completion.usage)
        if completion.text:
            result.texts.append(completion.text)
        if not completion.tool_calls:
            return result
        messages.append(Message("assistant", completion.text, tool_calls=completion.tool_calls))
        result.tool_calls += [c.name for c in completion.tool_calls]
        messages.extend(await asyncio.gather(*(execute(c) for c in completion.tool_calls)))
    result.hit_max_steps = True
    return result
