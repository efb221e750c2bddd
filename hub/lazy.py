"""Modules loaded on first use: start-up pays only for what it runs.

`sovhub mcp` must answer `initialize` within a client's start-up budget, and `sovhub run` should be
serving quickly; the SDKs behind optional paths (anthropic, openai, docker) take seconds to import
on a busy machine and are needed only when a model or a container is actually called. The object
`lazy_import` returns imports the real module at its first attribute access, through the normal
(thread-safe) import machinery, so `anthropic.AsyncAnthropic(...)` and `except docker.errors.X`
work unchanged, from the event loop or from worker threads alike.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """Stands for a module until an attribute is needed; then it is the module."""

    def __getattr__(self, attr: str) -> Any:
        module = self.__dict__.get("_loaded")
        if module is None:
            module = importlib.import_module(self.__name__)
            self.__dict__["_loaded"] = module
        return getattr(module, attr)


def lazy_import(name: str) -> ModuleType:
    """`name`, imported at its first attribute access (already imported: returned as is)."""
    if name in sys.modules:
        return sys.modules[name]
    if importlib.util.find_spec(name) is None:  # a missing package is an error at import, as usual
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    return LazyModule(name)
