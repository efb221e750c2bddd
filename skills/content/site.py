"""The Astro site as a transaction: stage files, build in a throw-away copy, then move into place.

Nothing under the site changes until the build succeeded; a failing deploy puts back what was
there before (articles, hero image, `dist/`). Commit and push come last and never undo a live
deploy: their failure is reported, not rolled back.

Drafts live in a folder outside everything Astro reads (the content collection, `src/pages`,
`public/`): Astro 5's `glob()` loader publishes `_name.md` files like any other, so a leading
underscore hides nothing. A file that is new to the site is created with a hard link, which fails
when the name exists, so two publishes racing for one slug cannot overwrite each other.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hub.errors import HubError

CONTENT_CONFIGS = (
    "src/content.config.ts",
    "src/content.config.js",
    "src/content.config.mjs",
    "src/content/config.ts",
    "src/content/config.js",
    "src/content/config.mjs",
)
COPY_IGNORE = shutil.ignore_patterns("node_modules", ".git", "dist", ".astro", ".sovhub-*")


class PublishError(HubError):
    pass


@dataclass
class CommandResult:
    code: int
    output: str


async def run_command(cmd: list[str], cwd: Path, timeout: float) -> CommandResult:
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            cwd=cwd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )
    except FileNotFoundError:
        return CommandResult(127, f"{cmd[0]}: command not found")
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return CommandResult(-1, f"timed out after {timeout:g} s")
    return CommandResult(proc.returncode or 0, out.decode(errors="replace"))


def tail(text: str, lines: int = 8) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TIMESTAMP = re.compile(r"^\d{1,2}:\d\d:\d\d(\s?[AP]M)?\s+")
ASTRO_ERROR = re.compile(r"^\[[A-Z][a-z]\w*\]\s")  # [InvalidContentEntryDataError], [ImageNotFound]
LOG_ERROR = re.compile(r"\berror\b|\w+Error\b|npm ERR!", re.I)
SECTION = re.compile(r"^\s*(Hint|Error reference|Location|Stack trace):\s*$")
GENERIC = re.compile(r"build failed|^\[ERROR\]\s*\[\w+\]\s*✗|^npm (error|ERR!)", re.I)
CODE_FRAME = re.compile(r"^\s*\d*\s*\|")  # vite's excerpt of the source under an error


def _clean(line: str) -> str:
    return TIMESTAMP.sub("", ANSI.sub("", line)).rstrip()


def build_error(output: str, limit: int = 600) -> str:
    """The lines of a failed build that name the error, not the stack trace that follows them.

    Astro prints `[ErrorName] message`, indented details, then Hint / Error reference / Location /
    Stack trace sections; vite's `[ERROR] [vite] ✗ Build failed` is followed by the real reason on
    the next line. Falls back to the last lines that are not stack frames.
    """
    lines = [_clean(line) for line in output.splitlines()]
    head = next((i for i, line in enumerate(lines) if ASTRO_ERROR.match(line)), None)
    if head is None:
        errors = [
            i
            for i, line in enumerate(lines)
            if LOG_ERROR.search(line) and not line.strip().startswith("at ") and not SECTION.match(line)
        ]
        head = next((i for i in errors if not GENERIC.search(lines[i])), errors[0] if errors else None)
        if head is not None and GENERIC.search(lines[head]):
            nxt = next((j for j in range(head + 1, len(lines)) if lines[j].strip()), None)
            head = nxt if nxt is not None and not SECTION.match(lines[nxt]) else head
    if head is None:
        frames = [line.strip() for line in lines if line.strip() and not line.strip().startswith("at ")]
        return " | ".join(frames[-4:])[:limit]
    picked = [lines[head].strip()]
    location = section = None
    for line in lines[head + 1 : head + 40]:
        if m := SECTION.match(line):
            section = m.group(1)
            if section == "Stack trace":
                break
            continue
        text = line.strip().replace("**", "")
        if not text or text.startswith("at ") or CODE_FRAME.match(text):
            continue
        if section == "Location":
            location = location or text
        elif section is None and (line.startswith((" ", "\t")) or text.startswith("file:")):
            if text not in picked and len(picked) < 4:
                picked.append(text)
        elif section is None and (len(picked) > 1 or ASTRO_ERROR.match(text)):
            break
    if location and "node_modules" not in location and location not in " ".join(picked):
        picked.append(f"at {location}")
    return " | ".join(picked)[:limit]


PUBLISHED_DIRS = ("public", "src/pages")  # Astro copies or routes everything under these


@dataclass
class Site:
    root: Path
    content_subdir: str = "src/content/blog"
    hero_style: str = "auto"
    dist_subdir: str = "dist"
    drafts_subdir: str = "drafts"

    def __post_init__(self) -> None:
        self.root = self.root.expanduser().resolve()

    @property
    def content_dir(self) -> Path:
        return self.root / self.content_subdir

    @property
    def drafts_dir(self) -> Path:
        return (self.root / self.drafts_subdir).resolve()

    def check(self) -> None:
        if not self.root.is_dir():
            raise PublishError(f"the blog at {self.root} does not exist (skills.content.blog_dir)")
        if not self.content_dir.is_dir():
            raise PublishError(f"the blog has no content dir {self.content_dir} (skills.content.content_subdir)")
        drafts = self.drafts_dir
        if not drafts.is_relative_to(self.root) or drafts == self.root:
            raise PublishError(
                f"the drafts folder {drafts} must be a folder inside the blog (skills.content.drafts_subdir)"
            )
        for name, published in (("the content collection", self.content_dir.resolve()),
                                *((sub, (self.root / sub).resolve()) for sub in PUBLISHED_DIRS)):
            if drafts.is_relative_to(published) or published.is_relative_to(drafts):
                raise PublishError(
                    f"the drafts folder {drafts} overlaps {name} ({published}), so a build would publish "
                    "the drafts; set skills.content.drafts_subdir to a folder Astro does not read, e.g. drafts"
                )

    def article_names(self, slug: str) -> list[Path]:
        """Every file that would be the page /blog/<slug>/ (Astro's id drops the extension and index)."""
        return [self.content_dir / n for n in (f"{slug}.md", f"{slug}.mdx", f"{slug}/index.md", f"{slug}/index.mdx")]

    def draft_path(self, slug: str) -> Path:
        return self.drafts_dir / f"{slug}.md"

    def existing(self, slug: str) -> Path | None:
        """The published article with this slug, if any."""
        return next((p for p in self.article_names(slug) if p.exists()), None)

    def taken(self, slug: str) -> list[Path]:
        """Everything that already uses `slug`: published articles, drafts (old `_slug.md` ones too)."""
        found = [p for p in self.article_names(slug) if p.exists()]
        found += [p for p in (self.draft_path(slug), self.content_dir / f"_{slug}.md") if p.exists()]
        return found

    def free_slug(self, slug: str) -> str:
        """The first of slug-2, slug-3, ... that nothing uses (for the error message's suggestion)."""
        n = 2
        while self.taken(f"{slug[:70]}-{n}"):
            n += 1
        return f"{slug[:70]}-{n}"

    def stray_drafts(self) -> list[Path]:
        """Old-style `_name.md` drafts inside the collection: Astro 5 publishes them."""
        return sorted(p for ext in ("md", "mdx") for p in self.content_dir.rglob(f"_*.{ext}"))

    def style(self) -> str:
        """`asset` when the collection schema uses image() (src/assets + relative path), else `public`."""
        if self.hero_style != "auto":
            return self.hero_style
        for rel in CONTENT_CONFIGS:
            path = self.root / rel
            if path.is_file() and "image()" in path.read_text(errors="replace"):
                return "asset"
        return "public"

    def hero_paths(self, slug: str) -> tuple[Path, str]:
        """(where the image goes, relative to the site root; what the frontmatter says)."""
        if self.style() == "asset":
            rel = Path("src/assets/heroes") / f"{slug}.png"
            return rel, os.path.relpath(self.root / rel, self.content_dir)
        rel = Path("public/images/heroes") / f"{slug}.png"
        return rel, "/" + rel.relative_to("public").as_posix()


@dataclass
class Transaction:
    """Files to add to the site, applied all at once and undone on a later failure."""

    site: Site
    files: dict[Path, bytes] = field(default_factory=dict)  # relative path -> content
    replace: set[Path] = field(default_factory=set)  # files allowed to replace an existing one
    _backups: dict[Path, bytes | None] = field(default_factory=dict)
    _dist_backup: Path | None = None
    _workdirs: list[Path] = field(default_factory=list)

    def add(self, rel: Path, data: bytes, *, replace: bool = False) -> None:
        self.files[Path(rel)] = data
        if replace:
            self.replace.add(Path(rel))

    def _write_one(self, root: Path, rel: Path, data: bytes) -> None:
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{id(self):x}.sovhub-tmp")
        tmp.write_bytes(data)
        if rel in self.replace:
            os.replace(tmp, dest)
            return
        try:
            try:
                os.link(tmp, dest)  # atomic create-if-absent: never overwrites
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links: exclusive create instead
                with open(dest, "xb") as out:
                    out.write(data)
        except FileExistsError:
            raise PublishError(f"{rel} already exists (written meanwhile?); pass force=true to replace it") from None
        finally:
            tmp.unlink(missing_ok=True)

    def _write(self, root: Path) -> None:
        for rel, data in self.files.items():
            self._write_one(root, rel, data)

    async def build(self, cmd: list[str], timeout: float, log: Path | None = None) -> Path:
        """Build a copy of the site with the new files in it; the real site is not touched.

        The whole output goes to `log`; a failure quotes the lines naming the error and the log's path.
        """
        work = Path(tempfile.mkdtemp(prefix="sovhub-build-"))
        self._workdirs.append(work)
        copy = work / "site"
        await asyncio.to_thread(self._prepare_copy, copy)  # a site tree is large: never on the event loop
        result = await run_command(cmd, copy, timeout)
        result.output = result.output.replace(str(copy), str(self.site.root))  # paths the user can open
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(result.output)
        if result.code != 0:
            where = f" (full log: {log})" if log is not None else ""
            raise PublishError(f"the site build failed (exit {result.code}): {build_error(result.output)}{where}")
        return copy

    def _prepare_copy(self, copy: Path) -> None:
        shutil.copytree(self.site.root, copy, ignore=COPY_IGNORE, symlinks=True)
        modules = self.site.root / "node_modules"
        if modules.exists():
            (copy / "node_modules").symlink_to(modules, target_is_directory=True)
        self._write(copy)

    def apply(self, built: Path | None) -> None:
        """File-tree work: call it off the event loop (`asyncio.to_thread`), as publish does."""
        # Move the new files (and the new build output) into the real site.
        for rel, data in self.files.items():  # a backup only for what this transaction wrote
            dest = self.site.root / rel
            old = dest.read_bytes() if dest.exists() else None
            self._write_one(self.site.root, rel, data)
            self._backups[rel] = old
        if built is not None and (built / self.site.dist_subdir).is_dir():
            dist = self.site.root / self.site.dist_subdir
            if dist.exists():
                self._dist_backup = dist.with_name(f".sovhub-old-{dist.name}")
                if self._dist_backup.exists():
                    shutil.rmtree(self._dist_backup)
                dist.rename(self._dist_backup)
            shutil.move(str(built / self.site.dist_subdir), dist)

    def rollback(self) -> None:
        for rel, old in self._backups.items():
            dest = self.site.root / rel
            if old is None:
                dest.unlink(missing_ok=True)
            else:
                dest.write_bytes(old)
        if self._dist_backup is not None:
            dist = self.site.root / self.site.dist_subdir
            if dist.exists():
                shutil.rmtree(dist)
            self._dist_backup.rename(dist)
            self._dist_backup = None
        self._backups.clear()

    def cleanup(self) -> None:
        for work in self._workdirs:
            shutil.rmtree(work, ignore_errors=True)
        if self._dist_backup is not None:
            shutil.rmtree(self._dist_backup, ignore_errors=True)


async def git_publish(
    site: Site, paths: list[Path], message: str, push: bool, timeout: float
) -> tuple[bool, bool, str]:
    """Commit the new files; push when the repository has a remote. -> (committed, pushed, error)."""
    root = site.root
    if not (root / ".git").exists():
        return False, False, ""
    ident: list[str] = []
    if (await run_command(["git", "config", "user.email"], root, 30)).code != 0:
        ident = ["-c", "user.name=sovhub", "-c", "user.email=sovhub@localhost"]
    add = await run_command(["git", "add", "--", *[str(p) for p in paths]], root, timeout)
    if add.code != 0:
        return False, False, f"git add failed: {tail(add.output)}"
    commit = await run_command(["git", *ident, "commit", "-m", message, "--", *[str(p) for p in paths]], root, timeout)
    if commit.code != 0:
        return False, False, f"git commit failed: {tail(commit.output)}"
    if not push:
        return True, False, ""
    remotes = (await run_command(["git", "remote"], root, 30)).output.split()
    if not remotes:
        return True, False, ""
    remote = "origin" if "origin" in remotes else remotes[0]
    pushed = await run_command(["git", "push", remote, "HEAD"], root, timeout)
    if pushed.code != 0:
        return True, False, f"git push failed: {tail(pushed.output)}"
    return True, True, ""
