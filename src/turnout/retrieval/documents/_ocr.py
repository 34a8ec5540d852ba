"""OCR with Tesseract: orientation first (OSD), then words with boxes and confidences.

Tesseract is a program (Debian: `tesseract-ocr`, `tesseract-ocr-eng`, `tesseract-ocr-osd`),
driven through `pytesseract`. Where either is missing, `tesseract_missing()` says what to
install, and the callers skip OCR with one warning rather than fail.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from turnout.core import InvalidInputError

from ._words import Box, Word

if TYPE_CHECKING:
    from PIL.Image import Image

INSTALL_HINT = (
    "install Tesseract (Debian/Ubuntu: apt-get install tesseract-ocr tesseract-ocr-eng "
    "tesseract-ocr-osd; or `make ocr`) and pytesseract (pip install 'turnout[retrieval]')"
)


class OcrUnavailableWarning(UserWarning):
    """Tesseract (or pytesseract) is missing: pages without a text layer get no text."""


@dataclass(frozen=True)
class OcrResult:
    """What OCR read on one image, after turning it upright.

    `rotation` is the clockwise turn (0, 90, 180, 270) applied to make the text upright;
    `confidence` the mean of Tesseract's word confidences (0 to 100), None when no word
    was read; boxes are fractions of the image as given (not as turned), so they point at
    the region on the page as it is stored.
    """

    text: str
    words: tuple[Word, ...]
    confidence: float | None
    rotation: int
    orientation_confidence: float | None


@functools.cache
def tesseract_missing() -> str | None:
    """None when OCR can run; otherwise what is missing and how to install it."""
    try:
        import pytesseract
    except ImportError:
        return f"pytesseract is not installed; {INSTALL_HINT}"
    try:
        version = pytesseract.get_tesseract_version()
    except (pytesseract.TesseractNotFoundError, OSError):
        return f"the tesseract program was not found on PATH; {INSTALL_HINT}"
    langs = set(pytesseract.get_languages(config=""))
    missing = [lang for lang in ("eng", "osd") if lang not in langs]
    if missing:
        return f"Tesseract {version} lacks language data {', '.join(missing)}; {INSTALL_HINT}"
    return None


def warn_once_if_missing() -> str | None:
    """The reason OCR cannot run (warned once per process), or None when it can."""
    reason = tesseract_missing()
    if reason is not None:
        _warn(reason)
    return reason


@functools.cache
def _warn(reason: str) -> None:
    warnings.warn(f"OCR skipped: {reason}", OcrUnavailableWarning, stacklevel=3)


def detect_rotation(image: Image) -> tuple[int, float | None]:
    """The clockwise turn that makes the text upright, and Tesseract's confidence in it.

    Too little text to tell (Tesseract's OSD needs a few dozen characters): (0, None).
    """
    import pytesseract

    try:
        osd = pytesseract.image_to_osd(image, output_type=pytesseract.Output.DICT)
    except pytesseract.TesseractError:
        return 0, None
    return int(osd.get("rotate", 0)) % 360, float(osd.get("orientation_conf", 0.0))


def ocr_image(image: Image, *, lang: str = "eng", timeout_s: float = 120.0) -> OcrResult:
    """Read the words on an image (a scan or a photo of a document), upright first."""
    import pytesseract

    reason = tesseract_missing()
    if reason is not None:
        raise InvalidInputError(f"OCR cannot run: {reason}")
    rgb = image.convert("RGB")
    rotation, orientation_conf = detect_rotation(rgb)
    if rotation:
        # OSD's `rotate` is clockwise; PIL's rotate turns counter-clockwise.
        rgb = rgb.rotate(-rotation, expand=True)
    try:
        data = pytesseract.image_to_data(
            rgb, lang=lang, output_type=pytesseract.Output.DICT, timeout=timeout_s
        )
    except RuntimeError as exc:  # pytesseract raises RuntimeError on its timeout
        raise InvalidInputError(f"OCR gave up after {timeout_s:.0f} s ({exc})") from exc
    width, height = rgb.size
    words: list[Word] = []
    lines: dict[tuple[int, int, int], list[str]] = {}
    for i, text in enumerate(data["text"]):
        token = str(text).strip()
        conf = float(data["conf"][i])
        if not token or conf < 0:
            continue
        left, top = data["left"][i] / width, data["top"][i] / height
        box = Box(left, top, left + data["width"][i] / width, top + data["height"][i] / height)
        words.append(Word(token, box.unrotate(rotation), conf))
        key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
        lines.setdefault(key, []).append(token)
    confidence = sum(w.confidence or 0.0 for w in words) / len(words) if words else None
    text = "\n".join(" ".join(tokens) for tokens in lines.values())
    return OcrResult(text, tuple(words), confidence, rotation, orientation_conf)
