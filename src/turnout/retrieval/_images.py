"""Reading images: bytes, content hashes and RGB decoding, with one place for PIL's errors.

Images are decoded as the published benchmarks do (`Image.open(...).convert("RGB")`, no
EXIF rotation), so measured recall is comparable with published recall.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

from ._errors import UnreadableImageError

if TYPE_CHECKING:
    from PIL.Image import Image

ImageSource = Union[str, "os.PathLike[str]", bytes, "Image"]
"""A path, the encoded bytes of an image, or an already decoded PIL image."""


@dataclass(frozen=True)
class ImageProbe:
    """What reading an image file without decoding its pixels tells."""

    sha256: str
    width: int
    height: int
    format: str | None


def source_name(source: ImageSource, index: int | None = None) -> str:
    """How an image is named in messages: its path, or its position."""
    if isinstance(source, str | os.PathLike):
        return str(source)
    return f"image #{index}" if index is not None else "image"


def _pil_errors() -> tuple[type[BaseException], ...]:
    from PIL import Image

    # SyntaxError and ValueError come from some of PIL's format plugins on broken headers.
    return (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise UnreadableImageError(str(path), "no such file") from exc
    except IsADirectoryError as exc:
        raise UnreadableImageError(str(path), "is a directory, not an image") from exc
    except PermissionError as exc:
        raise UnreadableImageError(str(path), "permission denied") from exc
    except OSError as exc:
        raise UnreadableImageError(str(path), exc.strerror or str(exc)) from exc


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def probe_image(path: str | os.PathLike[str]) -> ImageProbe:
    """Hash a file and read its header; raises UnreadableImageError for a non-image."""
    from PIL import Image

    data = read_bytes(path)
    if not data:
        raise UnreadableImageError(str(path), "empty file")
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            fmt = img.format
    except _pil_errors() as exc:
        raise UnreadableImageError(str(path), f"not a readable image ({exc})") from exc
    return ImageProbe(content_hash(data), width, height, fmt)


def decode_rgb(source: ImageSource, index: int | None = None) -> Image:
    """Decode any image source to an RGB PIL image; UnreadableImageError names the source."""
    from PIL import Image as PILImage

    name = source_name(source, index)
    try:
        if isinstance(source, PILImage.Image):
            return source if source.mode == "RGB" else source.convert("RGB")
        data = source if isinstance(source, bytes) else read_bytes(source)
        with PILImage.open(io.BytesIO(data)) as img:
            return img.convert("RGB")
    except UnreadableImageError as exc:
        exc.index = index
        raise
    except _pil_errors() as exc:
        raise UnreadableImageError(name, f"cannot decode ({exc})", index) from exc
