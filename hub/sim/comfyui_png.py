"""Minimal PNG encoder (zlib + struct): the ComfyUI stand-in writes real, decodable images.

Pillow is not a hub dependency; a truecolour 8-bit PNG with tEXt chunks is all SaveImage needs.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterable


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(width: int, height: int, rows: Iterable[bytes], text: dict[str, str] | None = None) -> bytes:
    """Encode RGB rows (each `width*3` bytes) as PNG, with optional tEXt chunks (e.g. `prompt`)."""
    raw = b"".join(b"\x00" + row for row in rows)
    out = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))]
    for key, value in (text or {}).items():
        out.append(_chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1", "replace")))
    out.append(_chunk(b"IDAT", zlib.compress(raw, 6)))
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def png_info(data: bytes) -> dict:
    """Read back size, bit depth, colour type and tEXt chunks (used by tests and the skill's checks)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, info, text = 8, {}, {}
    idat = b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0]
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"bad CRC in {kind!r} chunk")
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            info.update(width=w, height=h, bit_depth=depth, color_type=ctype)
        elif kind == b"tEXt":
            key, _, value = body.partition(b"\x00")
            text[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    if len(raw) != info["height"] * (info["width"] * 3 + 1):
        raise ValueError("pixel data does not match the header size")
    info["text"] = text
    return info


def solid_rows(width: int, height: int, rgb: tuple[int, int, int]) -> list[bytes]:
    row = bytes(rgb) * width
    return [row] * height


def pattern_rows(width: int, height: int, seed: str) -> list[bytes]:
    """A deterministic diagonal colour wash derived from `seed` (cheap: one row, rotated)."""
    h = hashlib.sha256(seed.encode()).digest()
    base = bytearray()
    for x in range(width + height):
        t = x / max(1, width + height - 1)
        base += bytes(int(h[i] * (1 - t) + h[i + 3] * t) & 0xFF for i in range(3))
    base = bytes(base)
    return [base[3 * y : 3 * (y + width)] for y in range(height)]


def invert_rows(rows: list[bytes]) -> list[bytes]:
    table = bytes(255 - i for i in range(256))
    return [r.translate(table) for r in rows]
