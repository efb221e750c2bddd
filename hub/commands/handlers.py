"""The built-in command handlers. Each takes (env, parsed) and answers through env.io."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import TYPE_CHECKING, Any

from hub.chat.budget import spend_by_client
from hub.commands.parser import Parsed, UsageError
from hub.commands.settings import POLICIES, SETTINGS
from hub.commands.skillargs import NOTE_KEYS, result_files, result_text, skill_params
from hub.errors import HubError, UnknownJob, UnknownSkill
from hub.jobs import FINAL, JobRecord
from hub.registry import Permission

if TYPE_CHECKING:
    from hub.commands.env import CommandEnv
    from hub.registry import Skill

BUDGET_CLIENTS = 5  # /budget names the dearest clients of the month
MODEL_ALIASES = {"claude": "cloud", "cloud": "cloud", "local": "local", "auto": "auto",
                 "local-only": "local-only"}


def _chat(env: CommandEnv):
    if env.hub.chat is None:
        raise HubError("the chat service is not running in this hub")
    return env.hub.chat


# -- conversation ----------------------------------------------------------------------------------
async def cmd_new(env: CommandEnv, args: Parsed) -> None:
    await _chat(env).new_conversation(env.conversation)
    await env.io.reply("New conversation started: earlier messages are forgotten here.")


async def cmd_compact(env: CommandEnv, args: Parsed) -> None:
    summary = await _chat(env).compact(env.conversation)
    await env.io.reply(f"Conversation compacted.\n\n{summary}" if summary else "Conversation compacted.")


async def cmd_why(env: CommandEnv, args: Parsed) -> None:
    await env.io.reply(_chat(env).why(env.conversation) or "No turn has been routed here yet.")


async def cmd_budget(env: CommandEnv, args: Parsed) -> None:
    b = await _chat(env).budget()
    paying = [c for c in await spend_by_client(env.hub.store.db) if c["month_usd"] > 0][:BUDGET_CLIENTS]
    per_client = "".join(f"\n- {c['client']} ({c['origin']}): ${c['today_usd']:.2f} today, "
                         f"${c['month_usd']:.2f} this month" for c in paying)
    await env.io.reply(
        f"Cloud spend: **${b.spent_today_usd:.2f}** today of ${b.daily_cap_usd:.2f}, "
        f"**${b.spent_month_usd:.2f}** this month of ${b.monthly_cap_usd:.2f}."
        + (f"\nBy client this month:{per_client}" if per_client else ""))


async def cmd_model(env: CommandEnv, args: Parsed) -> None:
    if env.settings is None:
        raise HubError("per-room settings are not available here")
    room = env.conversation.room
    choice = args.values.get("policy")
    if not choice:
        current = await env.settings.get(room, "policy") or env.hub.config.routing.default_policy
        await env.io.reply(f"Model policy here: **{current}** (choices: {', '.join(POLICIES)}).")
        return
    policy = MODEL_ALIASES[choice]
    if policy != "local-only" and env.role != "owner":
        # anyone may make a room more private; only its owner may open it to the cloud again
        await env.io.reply("Only the room's owner can change the model policy (anyone may set `local-only`).")
        return
    await env.settings.set(room, "policy", policy)
    await env.io.reply(f"Model policy for this room is now **{policy}**.")


async def _forced_turn(env: CommandEnv, args: Parsed, override: str) -> None:
    if env.run_turn is None:
        raise HubError("chat turns are not available here")
    await env.run_turn(args.values["text"], override)


async def cmd_local(env: CommandEnv, args: Parsed) -> None:
    await _forced_turn(env, args, "local")


async def cmd_claude(env: CommandEnv, args: Parsed) -> None:
    await _forced_turn(env, args, "cloud")


# -- hub state -------------------------------------------------------------------------------------
def _fmt_status(data: dict[str, Any]) -> str:
    gpu = data.get("gpu", {})
    jobs = data.get("jobs", {})
    lines = [
        f"**sovhub** up {_uptime(data.get('uptime_s') or 0)} · {data.get('skills', 0)} skills",
        f"GPU: {gpu.get('resident') or 'nothing resident'} ({gpu.get('state', '?')}), "
        f"queue {gpu.get('queue', 0)}",
        "Jobs: " + (", ".join(f"{k} {v}" for k, v in sorted(jobs.items())) or "none"),
    ]
    running = data.get("running") or []
    if running:
        lines.append("Running: " + ", ".join(f"{r['skill']} ({r['job_id']})" for r in running))
    spend = data.get("spend")
    if isinstance(spend, dict) and "spent_today_usd" in spend:
        lines.append(f"Spend: ${spend['spent_today_usd']:.2f} today, ${spend.get('spent_month_usd', 0):.2f} month")
    scheduler = data.get("gpu_scheduler")
    if isinstance(scheduler, dict):
        lines.append(_fmt_swaps(scheduler))
    for key, value in data.items():
        if key in ("uptime_s", "skills", "jobs", "running", "gpu", "spend", "gpu_scheduler"):
            continue
        if isinstance(value, dict):  # scalars only: nested detail belongs to the status page
            shown = ", ".join(p for k, v in value.items() if not isinstance(v, dict | list)
                              and (p := _readable(k, v)) is not None)
        else:
            shown = _readable("", value) or "-"
        lines.append(f"{_label(key).capitalize()}: {shown}")
    return "\n".join(f"- {line}" if i else line for i, line in enumerate(lines))


def _label(key: str) -> str:
    return key.replace("_", " ").strip()


def _readable(key: str, value: Any) -> str | None:
    """One status item in words: `synced` not `synced True`, `last sync 2.1 s ago`, nothing for None."""
    if value is None:
        return None
    label = _label(key)
    if isinstance(value, bool):
        return (label or "yes") if value else f"not {label}" if label else "no"
    if isinstance(value, float):
        value = f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    if key.endswith("_s_ago"):
        return f"{_label(key[:-6])} {value} s ago"
    if key.endswith("_s"):
        return f"{_label(key[:-2])} {value} s"
    return f"{label} {value}".strip()


def _uptime(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _fmt_swaps(scheduler: dict[str, Any]) -> str:
    metrics = scheduler.get("metrics") or {}
    recent = [f"{s.get('resident')} {s.get('phase')} {s.get('seconds', 0):.1f} s"
              for s in (scheduler.get("swaps") or [])[-3:]]
    waits = (metrics.get("wait_s") or {}).get("interactive") or {}
    text = f"Swaps: {metrics.get('swaps', 0)} ({metrics.get('swap_seconds', 0):.0f} s)"
    if recent:
        text += " · last: " + ", ".join(recent)
    if waits.get("n"):
        text += f" · chat wait p95 {waits.get('p95', 0):.1f} s"
    return text


async def cmd_status(env: CommandEnv, args: Parsed) -> None:
    data = await env.hub.status()
    if env.status_extra is not None:
        data.update(env.status_extra())
    await env.io.reply(_fmt_status(data))


async def cmd_jobs(env: CommandEnv, args: Parsed) -> None:
    records = await env.hub.jobs.list(limit=10)
    if not records:
        await env.io.reply("No jobs yet.")
        return
    now = time.time()
    lines = [f"- `{r.id}` {r.skill} — **{r.status}** ({now - r.created_at:.0f} s ago)"
             + (f": {r.error}" if r.error else "") for r in records]
    await env.io.reply("Recent jobs:\n" + "\n".join(lines))


async def cmd_cancel(env: CommandEnv, args: Parsed) -> None:
    outcome = await env.hub.jobs.cancel(args.values["job"])
    await env.io.reply(f"Job `{args.values['job']}`: {outcome}.")


async def cmd_skills(env: CommandEnv, args: Parsed) -> None:
    lines = []
    for s in env.hub.skills:
        alias = f" (/{s.command})" if s.command else ""
        lines.append(f"- **{s.name}**{alias} [{s.permission.name}]: {s.description.splitlines()[0]}")
    await env.io.reply("Skills:\n" + "\n".join(lines) if lines else "No skills are installed.")


async def cmd_settings(env: CommandEnv, args: Parsed) -> None:
    if env.settings is None:
        raise HubError("per-room settings are not available here")
    room = env.conversation.room
    key, value = args.values.get("key"), args.values.get("value")
    if key and value:
        if key == "policy":
            value = MODEL_ALIASES.get(value, value)
        await env.settings.set(room, key, value)
        await env.io.reply(f"{key} = **{value}** for this room.")
        return
    if key and key not in SETTINGS:
        raise UsageError(f"unknown setting {key!r} (known: {', '.join(SETTINGS)})")
    current = await env.settings.all(room)
    shown = [k for k in SETTINGS if not key or k == key]
    await env.io.reply("Room settings:\n" + "\n".join(
        f"- **{k}**: {current[k] if current[k] is not None else '(default)'} — {SETTINGS[k][2]}" for k in shown))


async def cmd_schedule(env: CommandEnv, args: Parsed) -> None:
    schedules = env.hub.cron
    if schedules is None:
        raise HubError("schedules are not available in this hub")
    handler = getattr(schedules, "chat_command", None)
    if handler is None:
        raise HubError("this hub's scheduler has no chat commands")
    text = await handler(args.values["action"], args.values.get("args") or "", env.context,
                         room=env.conversation.room)
    await env.io.reply(str(text))


# -- skills ----------------------------------------------------------------------------------------
INTERRUPTED = "interrupted by a hub restart"


def request_job_id(request_id: str) -> str:
    """The job id of the skill command a request starts: the same request always maps to the same job."""
    return hashlib.sha256(f"sovhub.request.{request_id}".encode()).hexdigest()[:16]


async def _earlier_job(env: CommandEnv, job_id: str) -> JobRecord | None:
    try:
        return await env.hub.jobs.get(job_id)
    except UnknownJob:
        return None


async def run_skill_command(env: CommandEnv, skill: Skill, params: dict[str, Any]) -> None:
    """Run a skill through the hub's one path; long skills get ⏳/✅/❌ and a progress line.

    With a `request_id` the job id is derived from the request: a request seen again (replayed
    after a crash) follows the job it already started, or reports how it ended, instead of running
    the skill a second time.
    """
    if env.request_id is None:
        handle = await env.hub.start_skill(skill.name, params, env.context, grant=env.grant,
                                           approver=env.approver)
        await _follow(env, skill, handle)
        return
    job_id = request_job_id(env.request_id)
    handle = env.hub.jobs.active.get(job_id)  # e.g. a queued job the hub resumed after its restart
    if handle is None:
        record = await _earlier_job(env, job_id)
        if record is not None:
            await _report_earlier(env, skill, record)
            return
        handle = await env.hub.start_skill(skill.name, params, env.context, grant=env.grant,
                                           approver=env.approver, job_id=job_id)
    await _follow(env, skill, handle)


async def _report_earlier(env: CommandEnv, skill: Skill, record: JobRecord) -> None:
    """The request already started this job (before a crash): say how it went, never run it again."""
    if record.status == "succeeded":
        if skill.long_running:
            await env.io.job_state("succeeded")
        await _send_result(env, skill, skill.result.model_validate(record.result or {}))
        return
    if record.status not in FINAL:
        raise HubError(f"{skill.name} (job {record.id}) is {record.status}; it is not started again "
                       f"(/jobs shows it, /cancel {record.id} stops it)")
    if skill.long_running:
        await env.io.job_state("failed")
    if record.error == INTERRUPTED:
        raise HubError(f"{skill.name} (job {record.id}) was {INTERRUPTED} and is not run again; "
                       "send the command again to retry")
    raise HubError(f"{skill.name} (job {record.id}): {record.error or record.status}")


async def _send_result(env: CommandEnv, skill: Skill, result) -> None:
    """Files arrive as attachments; text follows only when it says something the files do not
    (a summary, a link, a warning) — not internals such as sizes or workflow node ids."""
    files = result_files(result)
    for path, kind in files:
        await env.io.send_file(path, kind=kind, caption=f"{skill.name}: {path.name}")
    if not files or _worth_saying(result):
        await env.io.reply(result_text(skill, result))


def _worth_saying(result) -> bool:
    data = result.model_dump(mode="json")
    if isinstance(data.get("summary"), str) and data["summary"].strip():
        return True
    return any((isinstance(v, str) and v.startswith(("http://", "https://"))) or (k in NOTE_KEYS and v)
               for k, v in data.items())


def _needs_approval(env: CommandEnv, skill: Skill) -> bool:
    return skill.permission is Permission.destructive and env.approver is not None


async def _follow(env: CommandEnv, skill: Skill, handle) -> None:
    """⏳ while the job waits or runs (not while it only waits for an approval), one progress line
    that ends with the final state, the result, then ✅ — or ❌ with the reason."""
    long = skill.long_running
    shown = [False]  # whether a progress line exists (then it gets the final state too)
    unlisten = None
    told_started: list[asyncio.Task] = []  # the bus does not wait for it: awaited before the final state
    if long:
        last = [0.0]

        async def on_progress(p) -> None:
            now = time.monotonic()
            if now - last[0] < 1.0 and (p.total is None or p.done < p.total):
                return
            last[0] = now
            shown[0] = True
            frac = f" {p.done:g}/{p.total:g}" if p.total else ""
            await env.io.progress(f"⚙️ {skill.name}{frac} · {p.message}".rstrip(" ·"))

        # Listening before the ⏳ goes out: a step reported while it is on its way is not lost.
        handle.on_progress(on_progress)
        if _needs_approval(env, skill) and handle.status in ("queued", "waiting_approval"):
            def on_started(event) -> None:
                if event.data.get("job_id") == handle.id:
                    told_started.append(asyncio.ensure_future(env.io.job_state("started")))

            unlisten = env.hub.bus.listen("job_started", on_started)
        else:
            await env.io.job_state("started")
        ticker = asyncio.create_task(_queue_ticker(env, skill, handle, shown))
    started = time.monotonic()
    try:
        result = await handle.wait()
    except asyncio.CancelledError:
        if long:
            ticker.cancel()  # the bridge is stopping: the job's own state says how it ends
        raise
    except HubError as exc:
        if long:
            ticker.cancel()
            if shown[0]:
                await env.io.progress(f"❌ {skill.name} · failed")
            await env.io.job_state("failed")
        raise HubError(f"{skill.name} (job {handle.id}): {exc}") from None
    finally:
        if unlisten is not None:
            unlisten()
        if told_started:
            await asyncio.gather(*told_started, return_exceptions=True)
    if long:
        ticker.cancel()
    await _send_result(env, skill, result)
    if long:
        if shown[0]:
            await env.io.progress(f"✅ {skill.name} · done in {_seconds(time.monotonic() - started)}")
        await env.io.job_state("succeeded")


def _seconds(s: float) -> str:
    return f"{s / 60:.0f} min" if s >= 90 else f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA unknown"
    return f"ETA {seconds / 60:.0f} min" if seconds >= 90 else f"ETA {seconds:.0f} s"


async def _queue_ticker(env: CommandEnv, skill: Skill, handle, shown: list[bool] | None = None) -> None:
    """While a job waits for the GPU, keep its progress line saying what it waits behind."""
    last = ""
    while not handle.done and handle.status in ("queued", "waiting_approval"):
        try:
            snap = env.hub.gpu.snapshot()
            mine = next((q for q in snap.queue if q.job_id == handle.id), None)
        except Exception:
            mine = None
        if mine is not None:
            behind = ", ".join(snap.busy_with) or (f"loading {mine.resident}" if snap.resident != mine.resident
                                                   else snap.resident or "the GPU")
            text = f"⏳ {skill.name} · queued #{mine.position + 1} behind {behind}, {_eta(mine.eta_s)}"
            if text != last:
                last = text
                if shown is not None:
                    shown[0] = True
                await env.io.progress(text)
        await asyncio.sleep(2.0)


async def cmd_run(env: CommandEnv, args: Parsed) -> None:
    try:
        skill = env.hub.skills.get(args.values["skill"])
    except UnknownSkill as exc:
        raise UsageError(str(exc)) from None
    params = skill_params(skill, Parsed("run", extra=dict(args.extra)))  # as parsed: quoting already applied
    await run_skill_command(env, skill, params)


# -- the operator's GPU controls (hub.gpu.surfaces: the same requests as the CLI, MCP and status page) --
async def cmd_gpu(env: CommandEnv, args: Parsed) -> None:
    """`/gpu` shows the residents and the queue; `load|unload|pin|unpin` are owners' requests to the
    scheduler (it answers, and says why when it refuses); `logs NAME` shows a server's last lines."""
    from dataclasses import asdict

    from hub.gpu import surfaces as gpu_surfaces

    action = args.values.get("action")
    rest = (args.values.get("args") or "").split()
    if action is None:
        snap = env.hub.gpu.snapshot()
        await env.io.reply(gpu_surfaces.describe(asdict(snap)))
        return
    if action == "logs":
        if not rest:
            raise UsageError("usage: /gpu logs NAME [lines]")
        lines = int(rest[1]) if len(rest) > 1 and rest[1].isdigit() else 30
        text = (await gpu_surfaces.logs(env.hub, rest[0], min(lines, 200))).strip()
        await env.io.reply(f"Last lines of **{rest[0]}**:\n```\n{text or '(no output yet)'}\n```")
        return
    if env.role != "owner":
        raise HubError(f"/gpu {action} is for owners only")
    name = rest[0] if rest else None
    seconds = None
    if action == "pin":
        if len(rest) < 2:
            raise UsageError("usage: /gpu pin NAME 30m")
        seconds = gpu_surfaces.parse_for(rest[-1])
    answer = await gpu_surfaces.control(env.hub, action, name, by=env.context.user or "owner",
                                        seconds=seconds, context=env.context)
    await env.io.reply(("✅ " if answer.ok else "❌ refused: ") + answer.message)
