"""The Hub: one object owning the bus, the skill registry, the store, jobs and the GPU arbiter.

Components (the scheduler, chat, schedules, and the bridges `hub.serve` finds through entry points)
attach themselves at start, in the order their declared needs give; the hub never imports a bridge
by name.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from typing import Any

from pydantic import BaseModel

from hub.approval import Approval
from hub.component import is_enabled, missing
from hub.component import order as order_components
from hub.config import HubConfig
from hub.context import Context
from hub.errors import HubError, StoreError
from hub.events import EventBus
from hub.gpu.api import DirectArbiter, GpuArbiter
from hub.jobs import Approver, JobHandle, JobManager
from hub.registry import Permission, SkillRegistry
from hub.store import Store

log = logging.getLogger(__name__)

# Started in the order their declared needs give (hub/component.py): the chat router reads the
# scheduler; schedules run skills through both.
COMPONENTS: tuple[str, ...] = ("hub.gpu.component", "hub.chat.component", "hub.cron.component")


class MissingDependency(HubError):
    """An enabled component needs a package that is not installed (the message names it)."""


def load_component(component: str | Any) -> Any:
    """A component module from its dotted name (a module or object is returned as is)."""
    return importlib.import_module(component) if isinstance(component, str) else component


def enabled_components(config: HubConfig, components: tuple[str | Any, ...]) -> list[Any]:
    """The enabled ones, in start order; one clear error listing every missing package."""
    modules = [m for m in map(load_component, components) if is_enabled(m, config)]
    problems = missing(modules)
    if problems:
        raise MissingDependency("; ".join(problems))
    return order_components(modules)


class Hub:
    def __init__(self, config: HubConfig, store: Store, skills: SkillRegistry) -> None:
        self.config = config
        self.store = store
        self.skills = skills
        self.bus = EventBus()
        self.jobs = JobManager(self)
        self.gpu: GpuArbiter = DirectArbiter({n: r.base_url for n, r in config.residents.servers.items()})
        self.chat: Any = None
        self.cron: Any = None  # the timetables (hub/cron), set by its component
        self.started_at = time.time()
        self.components: list[Any] = []
        self.extras: dict[str, Any] = {}

    @classmethod
    async def start(cls, config: HubConfig, *, skills: SkillRegistry | None = None,
                    components: tuple[str | Any, ...] = COMPONENTS, resume_jobs: bool = True) -> Hub:
        """`components`: dotted module names or component objects (bridges included), started in the
        order their declared needs give; resumed jobs and schedules run once all of them are up."""
        if skills is None:
            from hub.plugins import load_registry, log_problems

            skills = load_registry(config)  # built-ins, packages, folders; broken plugins are skipped
            log_problems(skills)
        modules = enabled_components(config, components)
        store = await Store.open(config.storage.db_path)
        hub = cls(config, store, skills)
        try:
            for module in modules:
                await module.setup(hub)
                hub.components.append(module)
                log.debug("component %s started", getattr(module, "__name__", module))
            if resume_jobs:
                await hub.jobs.resume_after_restart()
        except BaseException:
            await hub.stop()
            raise
        await hub.bus.fire_and_wait("hub_started", {}, Context.new("cli"))  # schedules run from here on
        return hub

    async def stop(self, timeout: float = 10.0) -> None:
        """Bounded shutdown: jobs, then components in reverse order, then the store."""
        await self.bus.fire_and_wait("hub_stopping", {}, Context.new("cli"))  # no new slot starts a job
        await self.jobs.shutdown(timeout)
        await self.bus.settle(timeout)  # announcements of the last jobs go out before the bridges stop
        for module in reversed(self.components):
            try:
                await asyncio.wait_for(module.teardown(self), timeout)
            except Exception:
                log.exception("component %s did not stop cleanly", module.__name__)
        self.components.clear()
        await self.store.close()

    async def start_skill(self, name: str, params: dict[str, Any] | BaseModel | None, context: Context, *,
                          grant: Permission = Permission.write, approver: Approver | None = None,
                          approval: Approval | None = None, job_class: str | None = None, priority: int = 0,
                          job_id: str | None = None) -> JobHandle:
        """`job_id`: an id chosen (and recorded) by the caller; its row is on disk before the skill runs.
        `approval`: how a destructive run is approved (hub/approval.py); `approver=f` means `Approval.ask(f)`."""
        return await self.jobs.start(name, params, context, grant=grant, approver=approver, approval=approval,
                                     job_class=job_class, priority=priority, job_id=job_id)

    async def run_skill(self, name: str, params: dict[str, Any] | BaseModel | None, context: Context, *,
                        grant: Permission = Permission.write, approver: Approver | None = None,
                        approval: Approval | None = None, job_class: str | None = None,
                        priority: int = 0) -> BaseModel:
        """The one path every caller uses: validate, check, approve, record, run, record the outcome."""
        handle = await self.start_skill(name, params, context, grant=grant, approver=approver, approval=approval,
                                        job_class=job_class, priority=priority)
        return await handle.wait()

    async def status(self) -> dict[str, Any]:
        """A summary for `sovhub status`, `/status` and the status page."""
        gpu = self.gpu.snapshot()
        try:
            await self.jobs.flush()
        except StoreError:
            pass  # a full disk must not hide the status that reports it (under "storage")
        rows = await self.store.db.execute_fetchall("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        out: dict[str, Any] = {
            "uptime_s": round(time.time() - self.started_at, 1),
            "skills": len(self.skills),
            "jobs": {r[0]: r[1] for r in rows},
            "running": [{"job_id": h.id, "skill": h.skill.name, "status": h.status}
                        for h in self.jobs.active.values()],
            "gpu": {"resident": gpu.resident, "state": gpu.state, "queue": len(gpu.queue),
                    "busy_with": gpu.busy_with},
            "storage": self.store.health.status(),
        }
        if getattr(self.skills, "problems", None):  # plugins that were skipped, and why
            out["skills_skipped"] = [str(p) for p in self.skills.problems]
        if self.chat is not None and hasattr(self.chat, "budget"):
            try:
                budget = await self.chat.budget()
                out["spend"] = budget.__dict__ if hasattr(budget, "__dict__") else budget
            except Exception as exc:
                out["spend"] = {"error": str(exc)}
        for key, provider in self.extras.items():
            if callable(getattr(provider, "status", None)):
                try:
                    out[key] = provider.status()
                except Exception as exc:
                    out[key] = {"error": str(exc)}
        return out
