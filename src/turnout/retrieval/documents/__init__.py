"""Document text: page text from a PDF's text layer or OCR, and passages with page and box.

    import pypdfium2 as pdfium
    from turnout.retrieval.documents import OcrOptions, page_text, split_passages

    pdf = pdfium.PdfDocument("manual.pdf")
    page = page_text(pdf[0], 1, OcrOptions(min_confidence=60))
    print(page.source, page.confidence, page.low_confidence)
    for passage in split_passages(page.words, page.number, size=80, overlap=20):
        print(passage.page, passage.box, passage.text[:60])

pypdfium2 and pytesseract are imported inside the functions that use them. OCR needs the
Tesseract program (`apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd`).
"""

from ._ocr import (
    INSTALL_HINT,
    OcrResult,
    OcrUnavailableWarning,
    detect_rotation,
    ocr_image,
    tesseract_missing,
)
from ._pages import (
    OcrOptions,
    PageText,
    TextSource,
    page_text,
    read_image,
    render_for_ocr,
    text_is_usable,
    text_layer,
)
from ._passages import Passage, split_passages
from ._words import Box, Word, union

__all__ = [
    "INSTALL_HINT",
    "Box",
    "OcrOptions",
    "OcrResult",
    "OcrUnavailableWarning",
    "PageText",
    "Passage",
    "TextSource",
    "Word",
    "detect_rotation",
    "ocr_image",
    "page_text",
    "read_image",
    "render_for_ocr",
    "split_passages",
    "tesseract_missing",
    "text_is_usable",
    "text_layer",
    "union",
]
