"""Page text: the PDF's text layer where it is usable, OCR where it is not.

A text layer is unusable when it is empty, or holds too few letters to be writing (a
scan with a page number stamped on it), or is mostly glyphs that are not letters or
digits (a font without a Unicode map extracts as garbage). Such a page is rendered at
`OcrOptions.scale` (capped at `max_pixels`), turned upright by Tesseract's orientation
detection and read by OCR, keeping its mean word confidence; a page below
`min_confidence` is flagged `low_confidence`. Where Tesseract is missing, the page keeps
no text and says why.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._ocr import ocr_image, warn_once_if_missing
from ._words import Box, Word

if TYPE_CHECKING:
    from PIL.Image import Image

TextSource = Literal["text-layer", "ocr", "none"]

# A text layer with fewer letters than this is taken for a scan's stamp, not writing.
_MIN_LETTERS = 12
_MIN_GOOD_SHARE = 0.6


@dataclass(frozen=True)
class OcrOptions:
    """When and how pages (and, if asked, images) are read by OCR."""

    enabled: bool = True
    min_confidence: float = 60.0
    scale: float = 3.0
    max_pixels: int = 16_000_000
    lang: str = "eng"


@dataclass(frozen=True)
class PageText:
    """The text of page `number` (from 1), where it came from, and how far to trust it."""

    number: int | None
    text: str
    words: tuple[Word, ...]
    source: TextSource
    confidence: float | None = None
    rotation: int | None = None
    low_confidence: bool = False
    note: str | None = None

    def quality(self) -> dict[str, Any]:
        """What goes into each item's payload (`meta`) about the page's text."""
        return {
            "text_source": self.source,
            "ocr_confidence": None if self.confidence is None else round(self.confidence, 2),
            "rotation": self.rotation,
            "low_confidence": self.low_confidence,
        }


def text_is_usable(text: str) -> bool:
    """Enough letters, and mostly letters and digits: writing rather than garbage glyphs."""
    chars = [c for c in text if not c.isspace()]
    letters = sum(unicodedata.category(c).startswith("L") for c in chars)
    if letters < _MIN_LETTERS:
        return False
    good = sum(unicodedata.category(c)[0] in "LN" or c in ".,;:'\"()-!?%/&" for c in chars)
    if good / len(chars) < _MIN_GOOD_SHARE:
        return False
    tokens = text.split()
    wordlike = sum(sum(ch.isalpha() for ch in t) >= 2 for t in tokens)
    return wordlike / max(1, len(tokens)) >= 0.5


def text_layer(page: Any) -> list[Word]:
    """A pypdfium2 page's words in reading order, each with its line's box."""
    width, height = page.get_size()
    textpage = page.get_textpage()
    try:
        words: list[Word] = []
        for i in range(textpage.count_rects()):
            left, bottom, right, top = textpage.get_rect(i)
            line = textpage.get_text_bounded(left, bottom, right, top)
            box = Box(
                max(0.0, left / width),
                max(0.0, (height - top) / height),
                min(1.0, right / width),
                min(1.0, (height - bottom) / height),
            )
            words += [Word(token, box) for token in line.split()]
        return words
    finally:
        textpage.close()


def render_for_ocr(page: Any, options: OcrOptions) -> Image:
    """The page as an image for OCR: `scale` times 72 dpi, smaller if over `max_pixels`."""
    width, height = page.get_size()
    scale = min(options.scale, math.sqrt(options.max_pixels / max(1.0, width * height)))
    image: Image = page.render(scale=scale).to_pil().convert("RGB")
    return image


def page_text(page: Any, number: int, options: OcrOptions) -> PageText:
    """The text of one PDF page (a pypdfium2 page): text layer, or OCR (see module doc)."""
    words = text_layer(page)
    text = " ".join(w.text for w in words)
    if text_is_usable(text):
        return PageText(number, text, tuple(words), "text-layer")
    why = "no text layer" if not text.strip() else "the text layer is not usable text"
    if not options.enabled:
        return PageText(number, "", (), "none", note=f"{why}; OCR is off for this collection")
    missing = warn_once_if_missing()
    if missing is not None:
        return PageText(number, "", (), "none", note=f"{why}; OCR skipped: {missing}")
    return read_image(render_for_ocr(page, options), number, options, why=why)


def read_image(
    image: Image, number: int | None, options: OcrOptions, *, why: str = "an image"
) -> PageText:
    """OCR an image (a rendered scan, a photo of a document, a screenshot)."""
    result = ocr_image(image, lang=options.lang)
    low = result.confidence is None or result.confidence < options.min_confidence
    note = (
        f"{why}; OCR confidence "
        + ("none (no words read)" if result.confidence is None else f"{result.confidence:.0f}")
        + f", below {options.min_confidence:.0f}"
        if low
        else None
    )
    return PageText(
        number,
        result.text,
        result.words,
        "ocr",
        confidence=result.confidence,
        rotation=result.rotation,
        low_confidence=low,
        note=note,
    )
