"""Image files for tests, made here: real encoders' output and hand-built headers."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path


def real_image(path: Path, size: tuple[int, int], fmt: str = "PNG") -> Path:
    from PIL import Image

    Image.new("RGB", size, (120, 80, 40)).save(path, format=fmt)
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height`, with a token IDAT: decoding it would
    need width x height x 3 bytes, reading its header needs 33."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )


def jpeg_bytes(size: tuple[int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(out, format="JPEG")
    return out.getvalue()
