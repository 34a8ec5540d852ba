"""An image's pixel size from its header alone, without decoding the pixels.

A header may claim 100,000 x 100,000 pixels; reading it must cost the same as reading a
thumbnail's, so a cap can refuse the image before anything decodes it.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import BinaryIO

import imagesize

from ._errors import InvalidImageError, InvalidSizeError
from ._image_tokens import check_size

_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "png"),
    (0, b"\xff\xd8", "jpeg"),
    (0, b"GIF87a", "gif"),
    (0, b"GIF89a", "gif"),
    (8, b"WEBP", "webp"),
    (0, b"BM", "bmp"),
    (0, b"II*\x00", "tiff"),
    (0, b"MM\x00*", "tiff"),
)
_HEIF_BRANDS = {b"heic": "heic", b"heix": "heic", b"mif1": "heif", b"avif": "avif"}


@dataclass(frozen=True)
class ImageSize:
    width: int
    height: int
    format: str


def sniff_format(head: bytes) -> str | None:
    """The image format named by the file's magic bytes, or None."""
    for offset, magic, name in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            if name == "webp" and not head.startswith(b"RIFF"):
                continue
            return name
    if head[4:8] == b"ftyp":
        return _HEIF_BRANDS.get(head[8:12])
    return None


def read_image_size(source: bytes | BinaryIO, *, name: str = "image") -> ImageSize:
    """Width and height (after EXIF rotation) read from the header of `source`.

    `name` is only used in error messages (a file path, or "image 2 of the request").
    """
    stream: BinaryIO = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    head = stream.read(32)
    if not head:
        raise InvalidImageError(f"{name}: the file is empty")
    fmt = sniff_format(head)
    if fmt is None:
        raise InvalidImageError(
            f"{name}: not a supported image (expected PNG, JPEG, GIF, WebP, BMP, TIFF, HEIF)"
        )
    stream.seek(0)
    try:
        info = imagesize.get_info(stream, dpi=False, colors=False, channels=False)
    except (ValueError, OSError, EOFError, IndexError, KeyError, struct.error) as exc:
        raise InvalidImageError(f"{name}: corrupt {fmt.upper()} header ({exc})") from exc
    if info.width <= 0 or info.height <= 0:
        if info.width == 0 or info.height == 0:
            raise InvalidImageError(f"{name}: image is zero-sized ({info.width}x{info.height})")
        raise InvalidImageError(f"{name}: corrupt {fmt.upper()} header (no size found)")
    try:
        check_size(info.width, info.height)
    except InvalidSizeError as exc:
        raise InvalidImageError(f"{name}: {exc}") from exc
    return ImageSize(info.width, info.height, fmt)
