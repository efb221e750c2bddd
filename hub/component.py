"""Components declare what they provide and what they need; the hub starts them in that order.

A component is a module (or object) with `async setup(hub)` and `async teardown(hub)`, and two
optional declarations, `PROVIDES` and `NEEDS`: tuples of typed keys (`Key[T]`, in the spirit of
Home Assistant's `HassKey`): the key names a service and carries its type, so `hub.get(CHAT)` is
typed where `hub.extras["chat"]` was `Any`. `order(...)` is pure: a need that nothing in the set
provides is not an error (the component finds it absent and degrades, e.g. chat without a GPU
scheduler), a cycle is.

Hub components (the GPU scheduler, chat, schedules) and bridges (Matrix, MCP, the status page, the
API gateway) are the same kind of thing and start through the same `order(...)`. A component module
is a light manifest: it imports what it runs (an SDK, uvicorn, fastmcp) inside `setup`, so a
configuration pays only for the parts it enables. Two more optional declarations serve that:
`enabled(config) -> bool` (off: not started, not imported) and `REQUIRES`, the third-party modules
it needs with what to install for each; `missing(...)` turns an absent one into one clear line.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


class Key(str, Generic[T]):
    """A typed name for something a component provides (the string is its `hub.extras` key)."""

    __slots__ = ()


@runtime_checkable
class Component(Protocol):
    async def setup(self, hub: Any) -> None: ...

    async def teardown(self, hub: Any) -> None: ...


GPU: Key[Any] = Key("gpu")            # hub.gpu: the resident-model scheduler (hub/gpu)
CHAT: Key[Any] = Key("chat")          # hub.chat: the chat service (hub/chat)
SCHEDULES: Key[Any] = Key("schedules")  # hub.cron: the timetables (hub/cron)
MATRIX: Key[Any] = Key("matrix")      # hub.extras["matrix"]: the Matrix bridge (bridges/matrix)
MCP: Key[Any] = Key("mcp")            # hub.extras["mcp"]: the MCP server (bridges/mcp)
STATUS_PAGE: Key[Any] = Key("status_page")  # hub.extras["status_page"]: the status page (bridges/status)
API: Key[Any] = Key("api")            # hub.extras["api"]: the OpenAI/Anthropic gateway (bridges/api)


class DependencyCycle(ValueError):
    pass


def provides(component: Any) -> tuple[str, ...]:
    return tuple(getattr(component, "PROVIDES", ()))


def needs(component: Any) -> tuple[str, ...]:
    return tuple(getattr(component, "NEEDS", ()))


def requires(component: Any) -> dict[str, str]:
    """{importable module: what to install for it}."""
    return dict(getattr(component, "REQUIRES", {}) or {})


def is_enabled(component: Any, config: Any) -> bool:
    check = getattr(component, "enabled", None)
    return bool(check(config)) if callable(check) else True


def missing(components: Sequence[Any]) -> list[str]:
    """One line per declared third-party module that is not installed, naming what to install.
    Found by the import system's finder only: nothing is imported to check."""
    out = []
    for c in components:
        for module, install in requires(c).items():
            if importlib.util.find_spec(module) is None:
                out.append(f"{_title(c)} needs {module!r}, which is not installed: pip install '{install}'")
    return out


def order(components: Sequence[Any]) -> list[Any]:
    """Each component after every component that provides one of its needs; otherwise the given
    order is kept (stable), so two independent components start as listed."""
    by_key: dict[str, list[int]] = {}
    for i, c in enumerate(components):
        for key in provides(c):
            by_key.setdefault(key, []).append(i)
    after = {i: sorted({j for key in needs(c) for j in by_key.get(key, ()) if j != i})
             for i, c in enumerate(components)}
    done: list[int] = []
    state: dict[int, str] = {}

    def visit(i: int, path: tuple[int, ...]) -> None:
        if state.get(i) == "done":
            return
        if state.get(i) == "visiting":
            names = " -> ".join(_name(components[k]) for k in (*path, i))
            raise DependencyCycle(f"components need each other: {names}")
        state[i] = "visiting"
        for j in after[i]:
            visit(j, (*path, i))
        state[i] = "done"
        done.append(i)

    for i in range(len(components)):
        visit(i, ())
    return [components[i] for i in done]


def _name(component: Any) -> str:
    return getattr(component, "__name__", None) or type(component).__name__


def _title(component: Any) -> str:
    return getattr(component, "TITLE", None) or _name(component)
