"""Pictures of items: query images decoded safely, photos and PDF pages rendered to a
bounded size for thumbnails and for attaching to a provider call.

PDFium is not thread-safe: every use of it in the gateway (rendering here, and the page
rendering inside uploads' indexing) holds `PDFIUM`.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from turnout.core import InvalidImageError, NotFoundError, PayloadTooLargeError

if TYPE_CHECKING:
    from PIL.Image import Image

PDFIUM = threading.Lock()
_QUERY_FORMATS = ("PNG", "JPEG", "GIF", "WEBP")


class SourceGoneError(NotFoundError):
    pass


def decode_query_image(data: bytes, *, max_bytes: int, max_pixels: int) -> Image:
    """A query image as RGB, refusing oversized, bomb-like, corrupt and unknown images."""
    from PIL import Image as PILImage

    if not data:
        raise InvalidImageError("image: empty")
    if len(data) > max_bytes:
        raise PayloadTooLargeError(
            f"image: {len(data):,} bytes; search accepts query images of at most {max_bytes:,} "
            "(search.max_query_image_bytes)"
        )
    try:
        with PILImage.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise PayloadTooLargeError(
                    f"image: claims {width}x{height} pixels, over the {max_pixels:,} a query "
                    "image may have (search.max_query_image_pixels); send a smaller image"
                )
            if img.format not in _QUERY_FORMATS:
                raise InvalidImageError(
                    f"image: {img.format} is not accepted; send PNG, JPEG, GIF or WebP"
                )
            img.seek(0)
            return img.convert("RGB")
    except (PayloadTooLargeError, InvalidImageError):
        raise
    except PILImage.DecompressionBombError as exc:
        raise PayloadTooLargeError(f"image: refused as a decompression bomb ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImageError(f"image: corrupt or not an image ({exc})") from None


class Renderer:
    """Renders an item's photo or PDF page to JPEG at a longest side, with a small cache."""

    def __init__(self, entries: int = 256) -> None:
        self._cache: OrderedDict[tuple[str, str, int | None, int], bytes] = OrderedDict()
        self._entries = entries
        self._lock = threading.Lock()

    def jpeg(self, source: str, content_hash: str, page: int | None, side: int) -> bytes:
        key = (source, content_hash, page, side)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        image = _render(Path(source), page, side)
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=88)
        data = out.getvalue()
        with self._lock:
            self._cache[key] = data
            if len(self._cache) > self._entries:
                self._cache.popitem(last=False)
        return data


def _render(path: Path, page: int | None, side: int) -> Image:
    from PIL import Image as PILImage

    if not path.is_file():
        raise SourceGoneError(f"the item's source file is no longer available ({path.name})")
    if page is None:
        try:
            with PILImage.open(path) as img:
                img.seek(0)
                picture = img.convert("RGB")
        except (OSError, ValueError, PILImage.DecompressionBombError) as exc:
            raise SourceGoneError(f"the item's image cannot be read ({exc})") from None
        picture.thumbnail((side, side))
        return picture
    import pypdfium2 as pdfium

    with PDFIUM:
        try:
            document = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            raise SourceGoneError(f"the item's document cannot be opened ({exc})") from None
        try:
            if not 1 <= page <= len(document):
                raise SourceGoneError(f"the item's page {page} is no longer in its document")
            pdf_page = document[page - 1]
            width, height = pdf_page.get_size()
            scale = side / max(width, height, 1.0)
            rendered: Image = pdf_page.render(scale=scale).to_pil().convert("RGB")
        finally:
            document.close()
    return rendered
