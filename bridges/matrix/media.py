"""Skill results as Matrix media: upload, then `m.image` / `m.audio` / `m.file` with a caption.

In an encrypted room the file is encrypted before upload and the event carries the `file` key
material instead of a plain `url` (the homeserver only ever stores ciphertext).
"""

from __future__ import annotations

import asyncio
import mimetypes
import struct
from pathlib import Path
from typing import Any

from bridges.matrix.client import MatrixConnection

MSGTYPES = {"image": "m.image", "audio": "m.audio", "file": "m.file"}


def png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    return None


def wav_duration_ms(data: bytes) -> int | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE" or len(data) < 44:
        return None
    byte_rate = struct.unpack("<I", data[28:32])[0]
    return int((len(data) - 44) * 1000 / byte_rate) if byte_rate else None


async def media_content(conn: MatrixConnection, room_id: str, path: Path, kind: str, caption: str) -> dict[str, Any]:
    data = await asyncio.to_thread(path.read_bytes)  # an episode is megabytes: never read on the event loop
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    encrypt = conn.is_encrypted(room_id)
    uri, keys = await conn.upload(data, mime, path.name, encrypt)
    info: dict[str, Any] = {"mimetype": mime, "size": len(data)}
    if kind == "image" and (size := png_size(data)):
        info["w"], info["h"] = size
    if kind == "audio" and (ms := wav_duration_ms(data)):
        info["duration"] = ms
    content: dict[str, Any] = {"msgtype": MSGTYPES.get(kind, "m.file"), "body": caption or path.name,
                               "filename": path.name, "info": info}
    if encrypt and keys:
        content["file"] = {"url": uri, "key": keys["key"], "iv": keys["iv"], "hashes": keys["hashes"],
                           "v": keys.get("v", "v2")}
    else:
        content["url"] = uri
    return content
