"""Page text: the text layer with boxes, OCR of rotated scans, confidence, passages."""

from __future__ import annotations

import warnings
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from turnout.core import InvalidInputError
from turnout.retrieval.documents import (
    Box,
    OcrOptions,
    OcrUnavailableWarning,
    Word,
    page_text,
    split_passages,
    tesseract_missing,
    text_is_usable,
)

from .corpus import GARBAGE, MANUAL, ROTATED_TEXT, UNDER_GARBAGE_TEXT, UPSIDE_DOWN_TEXT


def _pages(path: Path) -> list[object]:
    document = pdfium.PdfDocument(str(path))
    return [page_text(document[i], i + 1, OcrOptions()) for i in range(len(document))]


def test_the_text_layer_gives_each_word_with_its_line_box(docs: Path) -> None:
    pages = _pages(docs / "manual.pdf")
    assert [p.source for p in pages] == ["text-layer"] * 4  # type: ignore[attr-defined]
    first = pages[0]
    assert first.text == " ".join(MANUAL[0].split())  # type: ignore[attr-defined]
    assert first.confidence is None and not first.low_confidence  # type: ignore[attr-defined]
    boxes = [w.box for w in first.words]  # type: ignore[attr-defined]
    # fpdf2 wrote the text from 20 pt down a 300 pt page, in lines 16 pt apart.
    assert all(0 <= b.left < b.right <= 1 and 0 <= b.top < b.bottom <= 1 for b in boxes)
    assert boxes[0].top < 0.15 and boxes[-1].top > boxes[0].top


def test_rotated_scans_are_turned_upright_and_read_with_high_confidence(docs: Path) -> None:
    assert tesseract_missing() is None, "tests need Tesseract: make ocr"
    rotated, upside_down, under_garbage = _pages(docs / "scans" / "scans.pdf")
    for page, text, turn in (
        (rotated, ROTATED_TEXT, 90),
        (upside_down, UPSIDE_DOWN_TEXT, 180),
        (under_garbage, UNDER_GARBAGE_TEXT, 0),
    ):
        assert page.source == "ocr"  # type: ignore[attr-defined]
        assert page.rotation == turn  # type: ignore[attr-defined]
        assert page.confidence is not None and page.confidence > 85  # type: ignore[attr-defined]
        assert not page.low_confidence  # type: ignore[attr-defined]
        read = page.text.lower().split()  # type: ignore[attr-defined]
        expected = [w.strip(".,").lower() for w in text.split()]
        assert sum(w.strip(".,") in expected for w in read) >= 0.9 * len(expected)


def test_ocr_boxes_point_at_the_page_as_stored_not_as_turned(docs: Path) -> None:
    rotated, upside_down, _ = _pages(docs / "scans" / "scans.pdf")
    # The first word of a scan turned 90 degrees counter-clockwise sits at the lower left
    # of the stored page; of one upside down, at the lower right.
    first = rotated.words[0].box  # type: ignore[attr-defined]
    assert first.left < 0.5 and first.top > 0.5
    first = upside_down.words[0].box  # type: ignore[attr-defined]
    assert first.left > 0.5 and first.top > 0.5


def test_a_faint_scan_is_read_but_flagged_low_confidence(docs: Path) -> None:
    (page,) = _pages(docs / "scans" / "faint.pdf")
    assert page.source == "ocr"  # type: ignore[attr-defined]
    assert page.low_confidence  # type: ignore[attr-defined]
    assert page.confidence is None or page.confidence < 60  # type: ignore[attr-defined]
    assert "below 60" in (page.note or "")  # type: ignore[attr-defined]


def test_garbage_glyphs_and_stamps_are_not_usable_text() -> None:
    assert not text_is_usable(GARBAGE)
    assert not text_is_usable("Page 3")
    assert not text_is_usable("")
    assert text_is_usable(MANUAL[1])
    assert text_is_usable("Überprüfung der Ventile und Dichtungen vor dem Winter.")


def test_without_tesseract_ocr_is_skipped_with_one_warning_naming_the_package(
    docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pytesseract

    from turnout.retrieval.documents import _ocr

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    _ocr.tesseract_missing.cache_clear()
    _ocr._warn.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pages = _pages(docs / "scans" / "scans.pdf")
        assert [p.source for p in pages] == ["none"] * 3  # type: ignore[attr-defined]
        assert "tesseract-ocr" in (pages[0].note or "")  # type: ignore[attr-defined]
        ours = [w for w in caught if issubclass(w.category, OcrUnavailableWarning)]
        assert len(ours) == 1
        assert "apt-get install tesseract-ocr" in str(ours[0].message)
    finally:
        _ocr.tesseract_missing.cache_clear()
        _ocr._warn.cache_clear()


def test_passages_overlap_and_keep_page_and_box() -> None:
    words = [
        Word(f"w{i}", Box(0.1, 0.05 * (i // 5), 0.9, 0.05 * (i // 5) + 0.04)) for i in range(100)
    ]
    passages = split_passages(words, 3, size=40, overlap=10)
    assert [p.index for p in passages] == [0, 1, 2]  # words 0-39, 30-69, 60-99
    assert passages[0].text.split()[-10:] == passages[1].text.split()[:10]
    assert passages[-1].text.split()[-1] == "w99"
    assert all(p.page == 3 for p in passages)
    assert passages[0].box == Box(0.1, 0.0, 0.9, 0.39)
    assert passages[1].box is not None and passages[1].box.top == pytest.approx(0.3)
    assert split_passages([], 1) == []
    with pytest.raises(InvalidInputError, match="overlap"):
        split_passages(words, 1, size=10, overlap=10)


@pytest.mark.parametrize("turn", [0, 90, 180, 270])
def test_unrotating_a_box_inverts_the_turn(turn: int) -> None:
    from PIL import Image

    # A black block on a white page: find it again after turning the page and back.
    page = Image.new("L", (200, 100), 255)
    page.paste(0, (20, 10, 60, 30))
    upright = page.rotate(-turn, expand=True)  # clockwise by `turn`, as OCR turns it
    left, top, right, bottom = Image.eval(upright, lambda v: 255 - v).getbbox()  # type: ignore[misc]
    w, h = upright.size
    box = Box(left / w, top / h, right / w, bottom / h).unrotate(turn)
    assert box.as_tuple() == pytest.approx((0.1, 0.1, 0.3, 0.3), abs=0.011)
