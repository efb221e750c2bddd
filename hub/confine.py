"""Paths given to skills stay inside configured roots.

A skill that accepts a path from a caller (a notes file, an article, an output) must not become a
way to read any file the hub can read (`/etc/passwd`, a secret file, `~/.ssh/...`) nor to learn
whether one exists. `confine()` resolves the path (`~`, `..` and every symlink, also in the roots)
and accepts it only inside one of the roots; anything else gets the same one-line refusal whether
or not it exists, so the answer is no existence oracle either.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from hub.errors import HubError


class OutsideRoots(HubError):
    """A path outside every configured root (the message never says whether it exists)."""


def resolve_roots(roots: Iterable[Path | str | None]) -> list[Path]:
    return [Path(r).expanduser().resolve() for r in roots if r]


def inside(path: Path, roots: list[Path]) -> bool:
    """True when `path`, after resolving symlinks, is one of `roots` or below one."""
    real = path.expanduser().resolve()
    return any(real == root or real.is_relative_to(root) for root in roots)


def confine(ref: str | Path, roots: Iterable[Path | str | None], *, what: str, setting: str) -> Path:
    """The resolved path of `ref` if it lies inside a root; else OutsideRoots naming the setting.

    Relative references are taken relative to the first root. The check is made on the fully
    resolved path, so a symlink inside a root that points out of it is refused too.
    """
    resolved_roots = resolve_roots(roots)
    raw = Path(str(ref)).expanduser()
    if not resolved_roots:
        raise OutsideRoots(f"{what} are read only from {setting}, which is not set; pass the text itself instead")
    path = raw if raw.is_absolute() else resolved_roots[0] / raw
    real = Path(os.path.realpath(path))
    if not any(real == root or real.is_relative_to(root) for root in resolved_roots):
        places = ", ".join(str(r) for r in resolved_roots)
        raise OutsideRoots(f"{what} are read only from {setting} ({places}); {ref} is not there")
    return real
