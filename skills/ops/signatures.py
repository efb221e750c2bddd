"""Known SGLang failure signatures (a YAML data file) matched against log lines."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from hub.errors import ConfigError
from skills.ops.findings import SEVERITY_RANK, Finding

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "config" / "sglang_signatures.yaml"
REQUIRED = ("id", "regex", "severity", "explanation", "fix")


@dataclass(frozen=True)
class Signature:
    id: str
    regex: re.Pattern[str]
    severity: str
    explanation: str
    fix: str
    context: re.Pattern[str] | None = None
    window: int = 15
    suppressed_by: tuple[str, ...] = ()
    example: str = ""


@dataclass
class _Hits:
    lines: list[str] = field(default_factory=list)
    count: int = 0


def parse(entries: object, source: str = "signatures") -> list[Signature]:
    """Validate the data file's entries; a bad entry is a ConfigError naming it."""
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: expected a list of signatures")
    out: list[Signature] = []
    seen: set[str] = set()
    for i, raw in enumerate(entries):
        where = f"{source}[{i}]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: each signature is a mapping")
        missing = [k for k in REQUIRED if not raw.get(k)]
        if missing:
            raise ConfigError(f"{where}: missing {', '.join(missing)}")
        sid = str(raw["id"])
        if sid in seen:
            raise ConfigError(f"{where}: duplicate id {sid!r}")
        seen.add(sid)
        if raw["severity"] not in SEVERITY_RANK:
            raise ConfigError(f"{where} ({sid}): severity must be one of {', '.join(SEVERITY_RANK)}")
        try:
            regex = re.compile(raw["regex"])
            context = re.compile(raw["context"]) if raw.get("context") else None
        except re.error as exc:
            raise ConfigError(f"{where} ({sid}): bad regex: {exc}") from None
        out.append(Signature(
            id=sid, regex=regex, severity=raw["severity"], explanation=" ".join(str(raw["explanation"]).split()),
            fix=" ".join(str(raw["fix"]).split()), context=context, window=int(raw.get("window", 15)),
            suppressed_by=tuple(raw.get("suppressed_by") or ()), example=str(raw.get("example", ""))))
    known = {s.id for s in out}
    for s in out:
        unknown = set(s.suppressed_by) - known
        if unknown:
            raise ConfigError(f"{source} ({s.id}): suppressed_by names unknown ids {sorted(unknown)}")
    return out


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> tuple[Signature, ...]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read signatures file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"signatures file {path} is not valid YAML: {exc}") from None
    return tuple(parse(data, path))


def load(path: Path | None = None) -> list[Signature]:
    """The signatures from `path` (default: the repo's config/sglang_signatures.yaml), re-read on change."""
    p = Path(path or DEFAULT_FILE).expanduser()
    try:
        mtime = p.stat().st_mtime
    except OSError:
        raise ConfigError(f"signatures file {p} does not exist") from None
    return list(_load_cached(str(p), mtime))


def match(lines: list[str], signatures: list[Signature], max_evidence: int = 3) -> list[Finding]:
    """One finding per signature seen in `lines` (most recent evidence lines, in log order)."""
    per_line: list[set[str]] = [set() for _ in lines]
    by_id = {s.id: s for s in signatures}
    for i, line in enumerate(lines):
        for sig in signatures:
            if not sig.regex.search(line):
                continue
            if sig.context is not None:
                lo, hi = max(0, i - sig.window), min(len(lines), i + sig.window + 1)
                if not any(sig.context.search(lines[j]) for j in range(lo, hi)):
                    continue
            per_line[i].add(sig.id)
    hits: dict[str, _Hits] = {}
    for i, ids in enumerate(per_line):
        for sid in ids:
            if any(other in ids for other in by_id[sid].suppressed_by):
                continue
            h = hits.setdefault(sid, _Hits())
            h.count += 1
            h.lines = [*h.lines, lines[i].rstrip()][-max_evidence:]
    findings = []
    for sig in signatures:
        h = hits.get(sig.id)
        if h is None:
            continue
        times = f" (seen {h.count}x)" if h.count > 1 else ""
        findings.append(Finding(id=sig.id, severity=sig.severity,  # type: ignore[arg-type]
                                title=sig.explanation + times, evidence=h.lines, fix=sig.fix))
    return findings
