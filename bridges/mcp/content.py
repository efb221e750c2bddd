"""Artifacts as MCP content: the picture itself, the episode itself, not a path on the hub's disk.

A skill's result names its files by path (`hero_image` → `path`, `render_podcast` → `path`). A
client on another machine, or a sandboxed one, cannot open that path, so every result value that
is a file inside the hub's artifacts directory (`<artifacts>/<job>/<file>`) also goes out as:

- an image: `ImageContent` of the file when it is at most `IMAGE_INLINE_MAX` bytes, else a
  downscaled WebP preview (longest side `PREVIEW_SIDE` px) — either way a `resource_link` to the
  full file;
- audio: `AudioContent` when at most `AUDIO_INLINE_MAX` bytes, else only the `resource_link`;
- anything else: the `resource_link`.

The link is `sovhub://artifacts/<job>/<file>`, read with `resources/read` (`resources.py`), which
checks the caller may see that job. The structured result stays as it was.

A podcast episode written into the blog (`skills.content.blog_dir` / `podcast_subdir`, public once
the site deploys) is linked into the job's artifacts (a hard link, else a copy) so it reaches the
client the same way. No other path outside the artifacts directory is ever served.
"""

from __future__ import annotations

import base64
import io
import mimetypes
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from mcp_types import AudioContent, ImageContent, ResourceLink

SCHEME = "sovhub"
URI_PREFIX = f"{SCHEME}://artifacts/"
URI_TEMPLATE = URI_PREFIX + "{job_id}/{filename}"
IMAGE_INLINE_MAX = 1_000_000  # bytes; base64 makes it a third larger on the wire
PREVIEW_SIDE = 768
AUDIO_INLINE_MAX = 2_000_000
INLINE_IMAGE_TYPES = {"image/png", "image/webp", "image/jpeg", "image/gif"}
TYPES = {".png": "image/png", ".webp": "image/webp", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
         ".gif": "image/gif", ".mp3": "audio/mpeg", ".opus": "audio/ogg", ".ogg": "audio/ogg",
         ".wav": "audio/wav", ".m4a": "audio/mp4", ".md": "text/markdown", ".json": "application/json"}


def mime_type(path: Path) -> str:
    return TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def artifact_uri(job_id: str, filename: str) -> str:
    return URI_PREFIX + quote(job_id, safe="") + "/" + quote(filename, safe="")


def artifact_path(root: Path, job_id: str, filename: str) -> Path | None:
    """The file a `sovhub://artifacts/<job>/<file>` names, or None (never a path outside the job)."""
    job_id, filename = unquote(job_id), unquote(filename)
    if not job_id or not filename or any(p in ("", ".", "..") or "/" in p or "\\" in p for p in (job_id, filename)):
        return None
    path = (root / job_id / filename).resolve()
    base = root.resolve()
    if not path.is_relative_to(base) or path.relative_to(base).parts != (job_id, filename) or not path.is_file():
        return None
    return path


def _named_paths(value: Any) -> Iterator[Path]:
    """Every absolute path that a result names in any of its (nested) string values, resolved."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _named_paths(item)
    elif isinstance(value, list):
        for item in value:
            yield from _named_paths(item)
    elif isinstance(value, str) and value.startswith("/") and len(value) < 4096 and "\n" not in value:
        try:
            yield Path(value).resolve()
        except (OSError, ValueError):
            return


def named_paths(result: Any) -> list[Path]:
    """The absolute paths a result names, resolved, each once. A result that names none (most do)
    costs no filesystem call: the artifact root used to be resolved (an lstat per path component)
    on every tool call."""
    return list(dict.fromkeys(_named_paths(result)))


def artifacts_in(paths: list[Path], root: Path) -> list[tuple[str, Path]]:
    """(job id, file) for every one of `paths` (from `named_paths`) that is a file directly inside a
    job's artifact dir."""
    if not paths:
        return []
    base = root.resolve()
    found: list[tuple[str, Path]] = []
    for path in paths:
        if path.is_relative_to(base) and len(path.relative_to(base).parts) == 2 and path.is_file():
            found.append((path.relative_to(base).parts[0], path))
    return found


def published_roots(config: Any) -> list[Path]:
    """Directories outside the artifacts whose files a result may hand out: the blog's episodes."""
    content = config.skills.content
    if content.blog_dir is None:
        return []
    return [(content.blog_dir.expanduser() / content.podcast_subdir).resolve()]


def published_in(paths: list[Path], roots: list[Path]) -> list[Path]:
    """The ones of `paths` (from `named_paths`) that are files directly inside one of `roots`."""
    if not roots:
        return []
    return [path for path in paths if any(path.parent == root for root in roots) and path.is_file()]


def adopt(path: Path, job_dir: Path) -> Path:
    """The published file as an artifact of the job: hard-linked (no copy of a big episode) or copied."""
    job_dir.mkdir(parents=True, exist_ok=True)
    target = job_dir / path.name
    if not target.exists():
        try:
            os.link(path, target)
        except OSError:  # another filesystem, or links not allowed
            shutil.copyfile(path, target)
    return target


def preview(data: bytes, side: int = PREVIEW_SIDE) -> bytes:
    """A WebP no larger than `side` px on its longest edge (aspect kept)."""
    from PIL import Image  # loaded only when a large image goes out

    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((side, side))
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        out = io.BytesIO()
        image.save(out, format="WEBP", quality=80)
        return out.getvalue()


def blocks_for(job_id: str, path: Path) -> list[Any]:
    """The content blocks for one artifact (blocking: file reads and image resizing; run in a thread)."""
    mime = mime_type(path)
    size = path.stat().st_size
    link = ResourceLink(type="resource_link", uri=artifact_uri(job_id, path.name), name=path.name, mime_type=mime,
                        size=size, description=f"artifact of job {job_id} ({size} bytes); read it with resources/read")
    if mime.startswith("image/"):
        data = path.read_bytes()
        if size <= IMAGE_INLINE_MAX and mime in INLINE_IMAGE_TYPES:
            image = ImageContent(type="image", data=base64.b64encode(data).decode(), mime_type=mime)
        else:
            try:
                small = preview(data)
            except Exception:  # not an image Pillow reads: the link alone still gives the file
                return [link]
            image = ImageContent(type="image", data=base64.b64encode(small).decode(), mime_type="image/webp",
                                 meta={"sovhub": {"preview": True, "full": link.uri}})
        return [image, link]
    if mime.startswith("audio/") and size <= AUDIO_INLINE_MAX:
        audio = AudioContent(type="audio", data=base64.b64encode(path.read_bytes()).decode(), mime_type=mime)
        return [audio, link]
    return [link]
