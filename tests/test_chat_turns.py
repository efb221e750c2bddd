"""Chat turns end to end: router + agent loop + memory + spend, against the SGLang and Anthropic stand-ins."""

from __future__ import annotations

import asyncio

import pytest

from hub.chat.api import ConversationKey
from hub.llm import ProviderUnavailable
from hub.registry import Permission
from tests.chat_helpers import HeldArbiter, RecordingSink, chat_bed
from tests.waiting import wait_until

ECHO = '[[call echo {"text": "hi", "times": 2}]]'


@pytest.fixture
async def bed(tmp_path):
    async with chat_bed(tmp_path) as bed:
        yield bed


async def test_local_tool_calling_round_trip_is_streamed_and_runs_the_skill(bed):
    outcome, sink = await bed.turn(f"please echo {ECHO}")
    assert outcome.route == "local" and outcome.error is None
    assert sink.of("finish") == ['Tool results: echo: {"text":"hi hi"}'] == [sink.streamed]
    assert len(sink.of("delta")) > 3  # streamed, not one block
    [job] = await bed.hub.jobs.list()
    assert job.skill == "echo" and job.status == "succeeded" and job.context.origin == "matrix"
    assert await bed.cloud_requests() == 0


async def test_cloud_tool_calling_round_trip_via_the_claude_prefix(bed):
    outcome, sink = await bed.turn(f"!claude please echo {ECHO}")
    assert outcome.route == "cloud" and "explicit /claude" in outcome.reason
    assert sink.of("finish") == ['Tool results: echo: {"text":"hi hi"}'] == [sink.streamed]
    assert await bed.cloud_requests() == 2 and await bed.local_requests() == 0
    assert outcome.cost_usd > 0


async def test_leaked_tool_calls_text_is_still_executed(bed):
    await bed.post(bed.sglang, "/_sim/faults", {"add": [{"kind": "leak_tool_calls"}]})
    outcome, sink = await bed.turn(f"echo {ECHO}")
    [job] = await bed.hub.jobs.list()
    assert job.skill == "echo" and job.status == "succeeded"
    assert "TOOL_CALLS" not in sink.streamed and outcome.text == 'Tool results: echo: {"text":"hi hi"}'


async def test_parallel_tool_calls_and_tool_errors_go_back_to_the_model(bed):
    outcome, _ = await bed.turn('[[call echo {"text": "a"}]] [[call boom {}]] [[call echo {"times": 99}]]')
    text = outcome.text
    assert 'echo: {"text":"a"}' in text
    assert "boom: error: " in text and "exploded" in text
    assert "echo: error: invalid arguments for echo" in text


async def test_destructive_tool_needs_an_approver_and_asks_it(bed):
    outcome, _ = await bed.turn("[[call wipe {}]]", grant=Permission.destructive)
    assert "needs a human's approval" in outcome.text
    asked = []

    async def approver(skill, params, ctx):
        asked.append(skill.name)
        return True

    outcome, _ = await bed.turn("[[call wipe {}]]", grant=Permission.destructive, approver=approver)
    assert asked == ["wipe"] and 'wipe: {"wiped":true}' in outcome.text


async def test_tools_are_filtered_by_the_callers_grant(bed):
    names = {t.name for t in bed.hub.chat.toolbox.specs(Permission.read)}
    assert "echo" in names and "wipe" not in names and {"hub_status", "hub_jobs"} <= names
    assert "wipe" in {t.name for t in bed.hub.chat.toolbox.specs(Permission.destructive)}
    outcome, _ = await bed.turn("[[call hub_jobs {}]]", grant=Permission.read)
    assert outcome.text.startswith("Tool results: hub_jobs: [")


async def test_local_down_fails_over_to_claude_in_an_auto_room(tmp_path):
    async with chat_bed(tmp_path, local_alive=False) as bed:
        outcome, sink = await bed.turn("hello there")
        assert outcome.route == "cloud" and sink.of("finish") == ["You said: hello there"]
        notice = sink.of("notice")[0]
        assert notice.startswith("The local model failed (") and notice.endswith("; answering with Claude instead.")
        assert "Error" not in notice and "the Claude" not in notice  # words, not an exception chain
        assert "→ Claude" in bed.hub.chat.why(ConversationKey("matrix", "!room:x"))
        # health now says local is down: the next auto turn goes straight to Claude
        outcome, sink = await bed.turn("again")
        assert outcome.route == "cloud" and "local model is down" in outcome.reason and not sink.of("notice")


async def test_cloud_down_fails_over_to_local(bed):
    await bed.post(bed.anthropic, "/_sim/faults", {"add": [{"kind": "status", "status": 529, "times": None}]})
    outcome, sink = await bed.turn("hello", override="cloud")
    assert outcome.route == "local" and sink.of("finish") == ["You said: hello"]
    assert "Claude failed" in sink.of("notice")[0]


async def test_gpu_held_by_another_resident_sends_an_auto_room_to_claude(bed):
    bed.hub.gpu = HeldArbiter("comfyui")
    outcome, _ = await bed.turn("hello")
    assert outcome.route == "cloud" and "GPU is busy with comfyui" in outcome.reason
    assert await bed.local_requests() == 0


async def test_gpu_held_local_only_room_queues_with_an_eta_notice_then_answers_locally(bed):
    arbiter = HeldArbiter("comfyui", eta_s=180)
    bed.hub.gpu = arbiter
    task = asyncio.create_task(bed.turn("hello", policy="local-only"))
    await wait_until(lambda: arbiter.waiting, what="the turn to wait for its lease")
    assert arbiter.leases[0]["resident"] == "sglang" and arbiter.leases[0]["job_class"] == "interactive"
    arbiter.released.set()
    outcome, sink = await task
    notice = sink.of("notice")[0]
    assert "busy with comfyui" in notice and "queued" in notice and "ETA ~3 min" in notice
    assert outcome.route == "local" and sink.of("finish") == ["You said: hello"]
    assert await bed.cloud_requests() == 0


async def test_local_only_room_with_local_down_sends_zero_requests_to_anthropic(tmp_path):
    async with chat_bed(tmp_path, local_alive=False) as bed:
        for text in ("hello", f"debug this stack trace {ECHO}", "again"):
            outcome, sink = await bed.turn(text, policy="local-only")
            assert outcome.error and "local-only" in sink.of("fail")[0] and "nothing was sent" in sink.of("fail")[0]
        with pytest.raises(ProviderUnavailable):
            await bed.hub.chat.complete([{"role": "user", "content": "x"}])
        assert await bed.cloud_requests() == 0


async def test_budget_cap_blocks_the_cloud_call_before_it_is_made_and_says_so(tmp_path):
    async with chat_bed(tmp_path, local_alive=False, routing={"budget": {"daily_usd": 0.0}}) as bed:
        outcome, sink = await bed.turn("hello", override="cloud")
        assert outcome.error and "daily cloud budget" in outcome.reason
        assert "daily cloud budget is reached" in sink.of("fail")[0]
        assert await bed.cloud_requests() == 0


async def test_over_budget_cloud_turn_is_answered_locally_with_a_notice(tmp_path):
    async with chat_bed(tmp_path, routing={"budget": {"daily_usd": 0.0}}) as bed:
        outcome, sink = await bed.turn("hello", override="cloud")
        assert outcome.route == "local" and "budget" in sink.of("notice")[0]
        assert await bed.cloud_requests() == 0


async def test_spend_is_stored_per_turn_and_counts_against_the_cap(tmp_path):
    async with chat_bed(tmp_path) as bed:
        outcome, _ = await bed.turn("hello", override="cloud")
        budget = await bed.hub.chat.budget()
        assert budget.spent_today_usd == pytest.approx(outcome.cost_usd) and outcome.cost_usd > 0
        rows = await bed.hub.store.db.execute_fetchall("SELECT provider, origin, room, usd FROM costs")
        assert [tuple(r)[:3] for r in rows] == [("anthropic", "matrix", "!room:x")]
        status = await bed.hub.status()
        assert status["spend"]["spent_today_usd"] == budget.spent_today_usd


async def test_first_token_timeout_fails_over_and_stall_timeout_fails_cleanly(tmp_path):
    async with chat_bed(tmp_path, sglang_options={"first_token_delay": 3},
                        llm={"local": {"first_token_timeout_s": 0.3}}) as bed:
        outcome, sink = await bed.turn("hello")
        assert outcome.route == "cloud" and "FirstTokenTimeout" in outcome.reason
        assert "no first token within 0.3 s" in sink.of("notice")[0]
    async with chat_bed(tmp_path / "b", llm={"local": {"stall_timeout_s": 0.3}}) as bed:
        await bed.post(bed.sglang, "/_sim/faults", {"add": [{"kind": "stall", "after_tokens": 2, "seconds": 30}]})
        outcome, sink = await bed.turn("one two three", policy="local-only")
        assert "stalled" in sink.of("fail")[0] and sink.streamed == "You said: "
        assert await bed.cloud_requests() == 0


async def test_mid_stream_disconnect_fails_over_without_a_duplicated_partial_answer(bed):
    await bed.post(bed.sglang, "/_sim/faults", {"add": [{"kind": "disconnect", "after_tokens": 2}]})
    outcome, sink = await bed.turn("one two three")
    assert outcome.route == "cloud" and "StreamBroken" in outcome.reason
    kinds = [k for k, _ in sink.events]
    after_notice = kinds[kinds.index("notice"):]
    assert "delta" not in after_notice  # the failover answer is not appended to the partial one
    assert sink.of("finish") == ["You said: one two three"]


async def test_mid_stream_disconnect_in_a_local_only_room_is_a_clean_error(bed):
    await bed.post(bed.sglang, "/_sim/faults", {"add": [{"kind": "disconnect", "after_tokens": 2}]})
    outcome, sink = await bed.turn("one two three", policy="local-only")
    assert outcome.error and sink.of("fail") and not sink.of("finish") and outcome.text == "You said: "
    assert await bed.cloud_requests() == 0


async def test_task_class_rules_route_debugging_to_claude_and_why_says_so(bed):
    outcome, _ = await bed.turn("can you find the root cause of this crash?")
    assert outcome.route == "cloud"
    why = bed.hub.chat.why(ConversationKey("matrix", "!room:x"))
    assert why == "Claude — task class 'debugging' (matched 'root cause')"
    outcome, _ = await bed.turn("draft a note to the team", room="!other:x")
    assert outcome.route == "local"


async def test_cancelling_a_turn_closes_the_stream_and_records_why(tmp_path):
    async with chat_bed(tmp_path, sglang_options={"tokens_per_s": 50}) as bed:
        sink = RecordingSink()
        task = asyncio.create_task(bed.turn("[[tokens 500]]", sink=sink))
        await wait_until(lambda: len(sink.of("delta")) >= 5, what="the answer to be streaming")
        assert (await bed.stats(bed.sglang))["running"] == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        async def stream_closed() -> bool:
            return (await bed.stats(bed.sglang))["running"] == 0

        await wait_until(stream_closed, what="the stand-in to see the stream closed")
        assert bed.hub.chat.why(ConversationKey("matrix", "!room:x")).endswith("cancelled")


async def test_a_lease_the_scheduler_refuses_is_a_local_failure_not_a_crash(bed):
    from hub.errors import HubError

    class Refusing(HeldArbiter):
        def lease(self, resident, **kw):
            raise HubError(f"unknown resident {resident!r}")

    bed.hub.gpu = Refusing()
    bed.hub.gpu.released.set()
    outcome, sink = await bed.turn("hello", policy="local-only")
    assert "GPU scheduler refused" in sink.of("fail")[0] and outcome.error


async def test_an_unpriced_cloud_model_is_still_charged_so_caps_hold(tmp_path):
    async with chat_bed(tmp_path, llm={"cloud": {"model": "claude-unlisted", "prices": {}}}) as bed:
        outcome, _ = await bed.turn("hello", override="cloud")
        assert outcome.route == "cloud" and outcome.cost_usd > 0


async def test_claude_failing_after_a_tool_step_hands_the_turn_with_its_tool_results_to_local(bed):
    fault = {"kind": "status", "status": 529, "skip": 1, "times": None}
    await bed.post(bed.anthropic, "/_sim/faults", {"add": [fault]})
    outcome, _ = await bed.turn(f"!claude {ECHO}")
    assert outcome.route == "local" and "Claude failed" in outcome.reason
    assert outcome.text == 'Tool results: echo: {"text":"hi hi"}'
    assert await bed.cloud_requests() == 2 and await bed.local_requests() == 1
    [job] = await bed.hub.jobs.list()
    assert job.skill == "echo"  # the tool ran once, not again after the failover


async def test_turns_announce_their_route_and_their_outcome_on_the_bus(bed):
    seen = []
    bed.hub.bus.listen("turn_routed", lambda ev: seen.append(("routed", ev.data["route"])))
    bed.hub.bus.listen("turn_finished", lambda ev: seen.append(("finished", ev.data["tools"])))
    await bed.turn(f"echo {ECHO}")
    assert seen == [("routed", "local"), ("finished", ["echo"])]


async def test_a_resident_that_failed_to_start_counts_as_local_down(bed):
    from hub.gpu.api import GpuSnapshot

    class Failed(HeldArbiter):
        def snapshot(self):
            return GpuSnapshot(resident=None, state="failed",
                               residents={"sglang": {"error": "CUDA out of memory", "eta_s": None}})

    bed.hub.gpu = Failed()
    outcome, _ = await bed.turn("hello")
    assert outcome.route == "cloud" and "failed to start (CUDA out of memory)" in outcome.reason


async def test_lease_classes_interactive_for_chat_skill_and_scheduled_for_background_work(bed):
    from hub.context import Context

    arbiter = HeldArbiter()
    arbiter.released.set()
    bed.hub.gpu = arbiter
    await bed.turn("hello")
    await bed.hub.chat.complete([{"role": "user", "content": "x"}], context=Context.new("mcp"))
    await bed.hub.chat.complete([{"role": "user", "content": "x"}], context=Context.new("cron"))
    assert [lease["job_class"] for lease in arbiter.leases] == ["interactive", "skill", "scheduled"]
    assert await bed.cloud_requests() == 0


@pytest.mark.parametrize(("exc", "reason"), [
    (ProviderUnavailable("local", "connection failed (RemoteProtocolError)"), "connection failed"),
    (ProviderUnavailable("local", "RemoteProtocolError: peer closed connection\ntraceback…"), "peer closed connection"),
    (ProviderUnavailable("local", "stream broke mid-answer (local: connection failed (ReadError))"),
     "stream broke mid-answer (connection failed)"),
    (ProviderUnavailable("cloud", ""), "it is unreachable"),
])
def test_failure_reasons_read_as_words_without_exception_names_or_provider_prefixes(exc, reason):
    from hub.chat.service import plain_reason

    assert plain_reason(exc) == reason


async def test_why_speaks_of_the_current_conversation_only(bed):
    key = ConversationKey("matrix", "!room:x")
    await bed.turn("hello")
    assert bed.hub.chat.why(key)
    await bed.hub.chat.new_conversation(key)
    assert bed.hub.chat.why(key) == ""  # /why after /new: nothing routed in this conversation yet
    await bed.hub.chat.start()  # and a restart does not bring the old reason back
    assert bed.hub.chat.why(key) == ""
