"""Bounds on what a config file may cost to read: size, nesting depth, alias expansion, secret files.

A config is read by the hub's owner, but also by `sovhub config check` on files from elsewhere,
and a YAML file can be made to eat the machine: a "billion laughs" file expands nine aliases nine
levels deep into 9^9 values, 5,000 nested brackets blow the parser's recursion, `/dev/zero` as a
secret file never ends. Each of these gets one clear error line, in milliseconds: the file is
checked on libyaml's event stream (no tree is built, nothing is expanded) before it is parsed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml

MAX_CONFIG_BYTES = 1 << 20  # a real config is a few KB
MAX_SECRET_BYTES = 64 << 10  # keys, tokens, passwords: far below this
MAX_DEPTH = 32  # a real config nests about 5 deep
MAX_VALUES = 50_000  # every scalar, counted as often as aliases repeat it

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TooCostly(ValueError):
    """The input exceeds a bound; `line` (1-based) where it was found, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def read_bounded(path: str | Path, limit: int, what: str) -> str:
    """The text of a regular file of at most `limit` bytes; devices, FIFOs and bigger files are refused
    without reading past the limit."""
    p = Path(path).expanduser()
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(p)) from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise TooCostly(f"{what} {path} is not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise TooCostly(f"{what} {path} is larger than {_size(limit)}")
    return data.decode("utf-8", errors="replace")


def check_shape(text: str) -> None:
    """Raise TooCostly when the YAML is too big, too deep or expands (through aliases) too far."""
    if len(text) > MAX_CONFIG_BYTES:
        raise TooCostly(f"the config is larger than {_size(MAX_CONFIG_BYTES)}")
    sizes: dict[str, int] = {}
    stack: list[list] = []  # [anchor, values so far] per open collection
    total = 0
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            line = event.start_mark.line + 1 if event.start_mark else None
            if isinstance(event, yaml.CollectionStartEvent):
                if len(stack) >= MAX_DEPTH:
                    raise TooCostly(f"the YAML nests deeper than {MAX_DEPTH} levels", line)
                stack.append([event.anchor, 0])
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                anchor, size = stack.pop()
                if anchor:
                    sizes[anchor] = size
            elif isinstance(event, yaml.ScalarEvent):
                size = 1
                if event.anchor:
                    sizes[event.anchor] = 1
            elif isinstance(event, yaml.AliasEvent):
                size = sizes.get(event.anchor, 1)
            else:
                continue
            if stack:
                stack[-1][1] += size
            else:
                total += size
            if max(total, stack[-1][1] if stack else 0) > MAX_VALUES:
                raise TooCostly(f"the YAML expands to more than {MAX_VALUES:,} values (aliases repeated "
                                "within aliases?)", line)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        if "nesting depth" in problem:
            problem = f"the YAML nests deeper than {MAX_DEPTH} levels"
            raise TooCostly(problem, mark.line + 1 if mark else None) from None
        raise TooCostly(f"not valid YAML: {problem}", mark.line + 1 if mark else None) from None


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"
