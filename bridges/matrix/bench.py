"""`sovhub bench matrix`: what the bridge adds to a turn, and whether one stalled room slows the others.

Figures (JSON):
- `vs_echo_bot`: p50 round trip of a one-token answer over the p50 of an echo bot of a few lines
  written with matrix-nio (`echo_bot`), asked alternately in the same run on the same homeserver
  (goal <= 1.3): what the hub's bot costs over the least a Matrix bot can do.
- `sigterm_stop_ms`: an idle `python -m bridges.matrix` (in its sync long-poll) from SIGTERM to
  exit (goal <= 1000 ms).
- `overhead_ms`: median round trip of a one-token answer (human sends -> human sees the bot's
  message, through a real local Synapse) minus the median time the LLM stand-in itself takes for
  the same request (goal <= 150 ms).
- with `rooms` rooms and one of them stuck on a stalled backend (the cloud stand-in never answers):
  the healthy rooms' p95 round trip over the p95 of one room alone (goal <= 1.2), when they all ask
  in the same instant (`burst_one_stalled`) and one after another `gap_ms` apart
  (`staggered_one_stalled`); `stall_effect_p95` compares the burst with and without the stall.
  `stall_held` says the stalled room was still waiting when those measurements ended (the bench
  sets the hub's cloud timeouts to an hour so it stays stuck; false would make the stall figures
  meaningless). Then the stalled backend goes away (the cloud stand-in stops, cutting its stream):
  `stalled_room_answered` says the room it held got its answer (a failover or a clear failure)
  and `stalled_room_answer_ms` how long after the backend went away.

Needs a repository checkout (it starts the test bed's Synapse, `tests/testbed/`) and the chat
service. Everything runs on loopback with ephemeral ports in a temp dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


def _cpu_s(pid: int | None) -> float:
    """CPU seconds used so far by a process (Linux /proc), to show who is the bottleneck."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _ms(v: float) -> float:
    return round(v * 1000, 1)


def _split(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {"p50": _ms(statistics.median(values)), "p95": _ms(_pct(values, 0.95)), "n": len(values)}


async def _llm_time(base_url: str, samples: int) -> list[float]:
    """The stand-in's own time for the same one-token streamed request (no hub, no Matrix)."""
    out = []
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(samples):
            t0 = time.perf_counter()
            async with http.stream("POST", f"{base_url}/v1/chat/completions", json={
                    "model": "mistral-small-4", "stream": True,
                    "messages": [{"role": "user", "content": "[[tokens 1]]"}]}) as resp:
                async for _line in resp.aiter_lines():
                    pass
            out.append(time.perf_counter() - t0)
    return out


async def _ask(human, room: str, text: str, bot_id: str, timeout: float = 60.0) -> float:
    t0 = time.perf_counter()
    asked = await human.send(room, text)
    await human.wait_for(lambda s: s.sender == bot_id and not s.is_edit and s.type == "m.room.message"
                         and s.relates.get("m.in_reply_to", {}).get("event_id") == asked, timeout=timeout)
    return time.perf_counter() - t0


async def _echo_bot(homeserver: str, user, store: Path, encrypted: bool):
    """The baseline: the echo bot people write first with matrix-nio (join on invite, answer every text)."""
    from nio import AsyncClient, AsyncClientConfig, InviteMemberEvent, RoomMessageText

    store.mkdir(parents=True, exist_ok=True)
    client = AsyncClient(homeserver, user.user_id, store_path=str(store),
                         config=AsyncClientConfig(encryption_enabled=encrypted, store_sync_tokens=False))
    await client.login(user.password)

    async def on_message(room, event) -> None:
        if event.sender != client.user_id:
            await client.room_send(room.room_id, "m.room.message", {
                "msgtype": "m.text", "body": event.body,
                "m.relates_to": {"m.in_reply_to": {"event_id": event.event_id}}}, ignore_unverified_devices=True)

    async def on_invite(room, event) -> None:
        if event.state_key == client.user_id:
            await client.join(room.room_id)

    await client.sync(timeout=0, full_state=True)  # what came before is not answered
    client.add_event_callback(on_message, RoomMessageText)
    client.add_event_callback(on_invite, InviteMemberEvent)
    return client, asyncio.create_task(client.sync_forever(timeout=30000))


async def _sigterm_stop_ms(synapse, tmp: Path) -> float:
    """Start the bot as its own process, let it go idle, SIGTERM it, time until it has exited."""
    import signal

    import yaml

    user = synapse.register(f"stop{uuid.uuid4().hex[:6]}")
    secret = tmp / "stop-password"
    secret.write_text(user.password)
    config = tmp / "stop.yaml"
    config.write_text(yaml.safe_dump({
        "storage": {"data_dir": str(tmp / "stop-data")},
        "matrix": {"enabled": True, "homeserver": synapse.url, "user_id": user.user_id,
                   "password_file": str(secret), "sync_timeout_ms": 30000},
        "llm": {"cloud": {"enabled": False}}}))
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridges.matrix", "--config", str(config), cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        async def running() -> bool:
            assert proc.stdout is not None
            async for line in proc.stdout:
                if b"matrix bridge running" in line:
                    return True
            return False

        if not await asyncio.wait_for(running(), 120):
            return float("nan")
        await asyncio.sleep(3)  # first sync done: idle in the long-poll
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
        return _ms(time.perf_counter() - t0)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def run(rooms: int = 50, samples: int = 20, rounds: int = 3, gap_ms: float = 40.0,
              encrypted: bool = False) -> dict[str, Any]:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from bridges.matrix.bridge import MatrixBridge
    from hub.config.model import HubConfig
    from hub.core import Hub
    from hub.sim.anthropic import create_app as anthropic_app
    from hub.sim.serve import AppServer, serve_app
    from hub.sim.sglang import create_app as sglang_app
    from tests.testbed.matrix_user import MatrixUserClient
    from tests.testbed.synapse import SynapseServer

    tmp = Path(tempfile.mkdtemp(prefix="sovhub-bench-matrix-"))
    synapse = SynapseServer(tmp / "synapse")
    await asyncio.to_thread(synapse.start)
    hub = bridge = human = echo_client = echo_task = None
    cloud = AppServer(anthropic_app())
    try:
        bot = synapse.register(f"bench{uuid.uuid4().hex[:6]}")
        person = synapse.register(f"person{uuid.uuid4().hex[:6]}")
        echo_user = synapse.register(f"echo{uuid.uuid4().hex[:6]}")
        echo_client, echo_task = await _echo_bot(synapse.url, echo_user, tmp / "echo", encrypted)
        cloud_url = await cloud.start()
        async with serve_app(sglang_app()) as local_url:
            config = HubConfig.model_validate({
                "storage": {"data_dir": str(tmp / "data")},
                "matrix": {"enabled": True, "homeserver": synapse.url, "user_id": bot.user_id,
                           "password": bot.password, "allowed_users": [person.user_id],
                           "owners": [person.user_id], "sync_timeout_ms": 30000},
                "llm": {"local": {"base_url": f"{local_url}/v1"},
                        "cloud": {"base_url": cloud_url, "api_key": "sk-bench", "first_token_timeout_s": 3600,
                                  "stall_timeout_s": 3600}},
                "routing": {"default_policy": "local"},
            })
            hub = await Hub.start(config)
            bridge = MatrixBridge(hub)
            await bridge.start()
            await bridge.synced.wait()
            human = await MatrixUserClient(synapse.url, person, tmp / "human").start()

            async def new_room(name: str) -> str:
                return await human.create_room([bot.user_id], name=name, encrypted=encrypted,
                                                wait_join=bot.user_id)

            # 1. One room: round trip of a one-token answer vs the LLM's own time, and vs the echo
            #    bot, asked alternately so both see the same homeserver and the same machine load.
            solo = await new_room("solo")
            echo_room = await human.create_room([echo_user.user_id], name="echo", encrypted=encrypted,
                                                wait_join=echo_user.user_id)
            await _ask(human, solo, "[[tokens 1]] warm-up", bot.user_id)
            await _ask(human, echo_room, "warm-up", echo_user.user_id)
            solo_mark = len(bridge.timings)
            single, echo = [], []
            for _ in range(samples):
                single.append(await _ask(human, solo, "[[tokens 1]]", bot.user_id))
                echo.append(await _ask(human, echo_room, "[[tokens 1]]", echo_user.user_id))
            alone = list(bridge.timings)[solo_mark:]
            echo_task.cancel()
            with contextlib.suppress(BaseException):
                await echo_task
            await echo_client.close()
            llm = await _llm_time(local_url, samples)

            # 2. Many rooms: a burst without any stall (control), then one room stuck on a stalled
            #    backend while the others ask all at once (burst) and one after another (staggered).
            many = [await new_room(f"room{i}") for i in range(rooms)]
            control: list[float] = []
            for _ in range(rounds):
                control.extend(await asyncio.gather(*(_ask(human, r, "[[tokens 1]]", bot.user_id)
                                                      for r in many[1:])))
            stalled = many[0]
            await bridge.settings.set(stalled, "policy", "cloud")
            async with httpx.AsyncClient() as http:
                await http.post(f"{cloud_url}/_sim/faults",
                                json={"add": [{"kind": "stall", "seconds": 3600, "times": None}]})
            stuck = asyncio.create_task(_ask(human, stalled, "this one hangs", bot.user_id, timeout=3600))
            await asyncio.sleep(0.5)
            burst: list[float] = []
            cpu0, wall0 = _cpu_s(synapse.proc.pid if synapse.proc else None), time.perf_counter()
            own0 = time.process_time()
            for _ in range(rounds):
                burst.extend(await asyncio.gather(*(_ask(human, r, "[[tokens 1]]", bot.user_id)
                                                    for r in many[1:])))

            wall = time.perf_counter() - wall0
            synapse_busy = (_cpu_s(synapse.proc.pid if synapse.proc else None) - cpu0) / wall
            own_busy = (time.process_time() - own0) / wall

            async def later(i: int, room: str) -> float:
                await asyncio.sleep(i * gap_ms / 1000)
                return await _ask(human, room, "[[tokens 1]]", bot.user_id)

            staggered: list[float] = []
            mark = len(bridge.timings)
            for _ in range(rounds):
                staggered.extend(await asyncio.gather(*(later(i, r) for i, r in enumerate(many[1:]))))
            inside = list(bridge.timings)[mark:]  # the staggered answers: the bot's part vs the homeserver's
            stall_held = not stuck.done()
            # 3. The stalled backend goes away (its stream is cut): the room it held is answered.
            gone = time.perf_counter()
            uvicorn_log = logging.getLogger("uvicorn.error")
            level = uvicorn_log.level
            uvicorn_log.setLevel(logging.CRITICAL)  # the stand-in's cut stream is the point, not news
            try:
                await cloud.stop()
            finally:
                uvicorn_log.setLevel(level)
            try:
                await asyncio.wait_for(asyncio.shield(stuck), 120)
                stalled_answer_ms: float | None = _ms(time.perf_counter() - gone)
            except Exception:
                stalled_answer_ms = None
            said = [s.content.get("body", "") for s in human.from_user(bot.user_id, stalled)]
            stuck.cancel()
            with contextlib.suppress(BaseException):
                await stuck
            await bridge.stop()
            await hub.stop()
            bridge_metrics, bridge, hub = dict(bridge.metrics), None, None
        stop_ms = await _sigterm_stop_ms(synapse, tmp)

        llm_med = statistics.median(llm)
        single_p95 = _pct(single, 0.95)

        def stats(values: list[float]) -> dict[str, Any]:
            p95 = _pct(values, 0.95)
            return {"p50_ms": _ms(statistics.median(values)), "p95_ms": _ms(p95), "n": len(values),
                    "p95_vs_single": round(p95 / single_p95, 2)}

        return {
            "bench": "matrix",
            "encrypted": encrypted,
            "single_room": {"p50_ms": _ms(statistics.median(single)), "p95_ms": _ms(single_p95),
                            "n": len(single)},
            "echo_bot": {"p50_ms": _ms(statistics.median(echo)), "p95_ms": _ms(_pct(echo, 0.95)), "n": len(echo)},
            "vs_echo_bot": round(statistics.median(single) / statistics.median(echo), 2),
            "vs_echo_bot_goal": 1.3,
            "llm_only": {"p50_ms": _ms(llm_med), "p95_ms": _ms(_pct(llm, 0.95)), "n": len(llm)},
            "sigterm_stop_ms": stop_ms,
            "sigterm_stop_goal_ms": 1000,
            "overhead_ms": _ms(statistics.median(single) - llm_med),
            "overhead_goal_ms": 150,
            "rooms": rooms,
            "rounds": rounds,
            "burst_no_stall": stats(control),
            "burst_one_stalled": stats(burst),
            "staggered_one_stalled": {**stats(staggered), "gap_ms": gap_ms},
            "stall_effect_p95": round(_pct(burst, 0.95) / _pct(control, 0.95), 2),
            # sync response received -> the reply's send starts (bridge + chat service + LLM), and the
            # send itself (the homeserver): one room alone vs the staggered answers
            "single_bot_ms": _split([t[2] - t[1] for t in alone]),
            "single_send_ms": _split([t[3] - t[2] for t in alone]),
            "staggered_bot_ms": _split([t[2] - t[1] for t in inside]),
            "staggered_send_ms": _split([t[3] - t[2] for t in inside]),
            "synapse_cpu_during_burst": round(synapse_busy, 2),
            "bench_process_cpu_during_burst": round(own_busy, 2),
            "cpus": os.cpu_count(),
            "p95_ratio_goal": 1.2,
            "stall_held": stall_held,
            "stalled_room_answered": stalled_answer_ms is not None,
            "stalled_room_answer_ms": stalled_answer_ms,
            "stalled_room_answer": said[-1][:200] if said else None,
            "undecryptable": bridge_metrics.get("undecryptable", 0),
        }
    finally:
        if echo_task is not None and not echo_task.done():
            echo_task.cancel()
        if echo_client is not None:
            await echo_client.close()
        if human is not None:
            await human.close()
        if bridge is not None:
            await bridge.stop()
        if hub is not None:
            await hub.stop()
        await cloud.stop()
        await asyncio.to_thread(synapse.stop)
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
