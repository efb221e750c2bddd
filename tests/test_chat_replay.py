"""A replayed turn (the same message seen again after a crash) never runs a model's write tool twice."""

from __future__ import annotations

from pydantic import BaseModel

from hub.jobs import SkillRun
from hub.registry import Permission, skill
from tests.chat_helpers import chat_bed

STAMPS: list[str] = []


class StampParams(BaseModel):
    label: str


class StampResult(BaseModel):
    stamped: str


@skill(name="stamp", description="Record a side effect (test)", params=StampParams, result=StampResult,
       permission=Permission.write)
async def stamp(run: SkillRun, params: StampParams) -> StampResult:
    STAMPS.append(params.label)
    return StampResult(stamped=params.label)


CALLS = '[[call stamp {"label": "a"}]] [[call stamp {"label": "a"}]] [[call stamp {"label": "b"}]]'


async def test_a_replayed_turn_reports_the_tool_jobs_it_already_ran_instead_of_running_them_again(tmp_path):
    STAMPS.clear()
    async with chat_bed(tmp_path) as bed:
        bed.hub.skills.register(stamp)
        outcome, _ = await bed.turn(CALLS, request_id="matrix:$event1")
        assert sorted(STAMPS) == ["a", "a", "b"]  # two identical calls in one turn are two runs
        assert outcome.text.count('{"stamped":"a"}') == 2

        hub = await bed.restart_hub()  # the crash: the bridge sees the same message again
        hub.skills.register(stamp)
        outcome, _ = await bed.turn(CALLS, request_id="matrix:$event1")
        assert sorted(STAMPS) == ["a", "a", "b"]
        assert outcome.text.count("ran for this message before") == 3 and '"result": {"stamped": "b"}' in outcome.text
        stamps = [j for j in await hub.jobs.list(limit=50) if j.skill == "stamp"]
        assert len(stamps) == 3

        await bed.turn(CALLS, request_id="matrix:$event2")  # a new message runs them again
        assert sorted(STAMPS) == ["a", "a", "a", "a", "b", "b"]
        await bed.turn('[[call echo {"text": "x"}]]', request_id="matrix:$event2")  # read-only: not guarded
        assert len([j for j in await hub.jobs.list(limit=50) if j.skill == "echo"]) == 1
