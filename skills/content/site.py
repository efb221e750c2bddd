"""The Astro site as a transaction: stage files, build in a throw-away copy, then move into place.

Nothing under the site changes until the build succeeded; a failing deploy puts back what was
there before (articles, hero image, `dist/`). Commit and push come last and never undo a live
deploy: their failure is reported, not rolled back.
"""

from __future__ import annotations

import asyncio
import os
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


@dataclass
class Site:
    root: Path
    content_subdir: str = "src/content/blog"
    hero_style: str = "auto"
    dist_subdir: str = "dist"

    def __post_init__(self) -> None:
        self.root = self.root.expanduser().resolve()

    @property
    def content_dir(self) -> Path:
        return self.root / self.content_subdir

    def check(self) -> None:
        if not self.root.is_dir():
            raise PublishError(f"the blog at {self.root} does not exist (skills.content.blog_dir)")
        if not self.content_dir.is_dir():
            raise PublishError(f"the blog has no content dir {self.content_dir} (skills.content.content_subdir)")

    def existing(self, slug: str) -> Path | None:
        for name in (f"{slug}.md", f"{slug}.mdx", f"{slug}/index.md", f"{slug}/index.mdx"):
            if (self.content_dir / name).exists():
                return self.content_dir / name
        return None

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
    _backups: dict[Path, bytes | None] = field(default_factory=dict)
    _dist_backup: Path | None = None
    _workdirs: list[Path] = field(default_factory=list)

    def add(self, rel: Path, data: bytes) -> None:
        self.files[Path(rel)] = data

    def _write(self, root: Path) -> None:
        for rel, data in self.files.items():
            dest = root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.sovhub-tmp")
            tmp.write_bytes(data)
            os.replace(tmp, dest)

    async def build(self, cmd: list[str], timeout: float) -> Path:
        """Build a copy of the site with the new files in it; the real site is not touched."""
        work = Path(tempfile.mkdtemp(prefix="sovhub-build-"))
        self._workdirs.append(work)
        copy = work / "site"
        shutil.copytree(self.site.root, copy, ignore=COPY_IGNORE, symlinks=True)
        modules = self.site.root / "node_modules"
        if modules.exists():
            (copy / "node_modules").symlink_to(modules, target_is_directory=True)
        self._write(copy)
        result = await run_command(cmd, copy, timeout)
        if result.code != 0:
            raise PublishError(f"the site build failed (exit {result.code}): {tail(result.output)}")
        return copy

    def apply(self, built: Path | None) -> None:
        """Move the new files (and the new build output) into the real site."""
        for rel in self.files:
            dest = self.site.root / rel
            self._backups[rel] = dest.read_bytes() if dest.exists() else None
        self._write(self.site.root)
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
