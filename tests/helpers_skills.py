"""Skills used only by tests: a registry built by hand, so core tests need no real skill."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from hub.jobs import SkillRun
from hub.registry import Permission, SkillRegistry, skill


class EchoParams(BaseModel):
    text: str = Field(description="what to echo")
    times: int = Field(1, ge=1, le=10)


class EchoResult(BaseModel):
    text: str


@skill(name="echo", description="Echo text back", params=EchoParams, result=EchoResult)
async def echo(run: SkillRun, params: EchoParams) -> EchoResult:
    await run.progress(1, 1, "echoed")
    return EchoResult(text=" ".join([params.text] * params.times))


class Empty(BaseModel):
    pass


class WipeResult(BaseModel):
    wiped: bool


@skill(name="wipe", description="A destructive test skill", params=Empty, result=WipeResult,
       permission=Permission.destructive)
async def wipe(run: SkillRun, params: Empty) -> WipeResult:
    return WipeResult(wiped=True)


class SleepParams(BaseModel):
    seconds: float = 5.0


@skill(name="nap", description="Sleep (long-running test skill)", params=SleepParams, result=Empty,
       long_running=True, timeout_s=2.0)
async def nap(run: SkillRun, params: SleepParams) -> Empty:
    for i in range(int(params.seconds * 10)):
        await run.progress(i, params.seconds * 10, "napping")
        await asyncio.sleep(0.1)  # the skill's simulated work: a long run that reports progress
    return Empty()


class BoomResult(BaseModel):
    ok: bool


@skill(name="boom", description="Always fails", params=Empty, result=BoomResult)
async def boom(run: SkillRun, params: Empty) -> BoomResult:
    raise RuntimeError("the backend exploded")


def test_registry() -> SkillRegistry:
    registry = SkillRegistry()
    for item in (echo, wipe, nap, boom):
        registry.register(item)
    return registry


test_registry.__test__ = False  # type: ignore[attr-defined]
