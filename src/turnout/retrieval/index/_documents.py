"""A document collection's items from one file: page images, passages and page records.

For each PDF page: the page image (when the collection embeds page images), the page's
text from its text layer or by OCR (`turnout.retrieval.documents`), cut into passages
that keep their page and box, and a `PageRecord` of where the text came from and how far
OCR can be trusted. Every item of the page carries the same record in `meta`
(`text_source`, `ocr_confidence`, `rotation`, `low_confidence`). Images give their image
item and captions as before and, when the collection asks (`ocr_images`), passages read
by OCR. A page that fails stops the whole file: nothing of it is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..documents import OcrOptions, PageText, page_text, read_image, split_passages
from ..documents._ocr import warn_once_if_missing
from ._corpus import SourceFile, Unit, check_page_size, decode_image, image_units, open_pdf
from ._errors import UnreadableDocumentError
from ._manifest import PageRecord
from ._types import DocumentOptions, Item, Provenance

# OCR renders pages larger than the image encoder sees them; this caps its pixels.
OCR_MAX_PIXELS = 16_000_000


def document_units(
    source: SourceFile,
    tenant: str,
    content_hash: str,
    documents: DocumentOptions,
    *,
    max_pixels: int,
    pdf_scale: float,
    with_text: bool,
) -> Iterator[Unit | PageRecord]:
    ocr = OcrOptions(
        enabled=documents.ocr,
        min_confidence=documents.min_ocr_confidence,
        max_pixels=min(max_pixels, OCR_MAX_PIXELS),
    )
    if source.kind == "pdf":
        yield from _pdf(source, tenant, content_hash, documents, ocr, max_pixels, pdf_scale)
        return
    yield from image_units(
        source, tenant, content_hash, max_pixels, with_text, with_image=documents.images
    )
    if documents.ocr_images and documents.ocr:
        missing = warn_once_if_missing()
        if missing is not None:
            text = PageText(None, "", (), "none", note=f"OCR skipped: {missing}")
        else:
            text = read_image(decode_image(source.path, max_pixels), None, ocr, why="an image")
        yield from _passages(source, tenant, content_hash, documents, text)
        yield _record(source, tenant, text)


def _pdf(
    source: SourceFile,
    tenant: str,
    content_hash: str,
    documents: DocumentOptions,
    ocr: OcrOptions,
    max_pixels: int,
    scale: float,
) -> Iterator[Unit | PageRecord]:
    import pypdfium2 as pdfium

    name = str(source.path)
    document = open_pdf(source.path)
    try:
        for index in range(len(document)):
            number = index + 1
            page = document[index]
            check_page_size(name, number, page, scale, max_pixels)
            try:
                image = (
                    page.render(scale=scale).to_pil().convert("RGB") if documents.images else None
                )
                text = page_text(page, number, ocr)
            except pdfium.PdfiumError as exc:
                raise UnreadableDocumentError(
                    name, f"page {number} cannot be read ({exc})"
                ) from exc
            if image is not None:
                item = Item(
                    id=f"{name}#p{number}",
                    tenant=tenant,
                    source=Provenance(name, content_hash, number),
                    modality="page",
                    text=text.text or None,
                    metadata=text.quality(),
                )
                yield Unit(item, image=image)
            yield from _passages(source, tenant, content_hash, documents, text)
            yield _record(source, tenant, text)
    finally:
        document.close()


def _passages(
    source: SourceFile, tenant: str, content_hash: str, documents: DocumentOptions, text: PageText
) -> Iterator[Unit]:
    name = str(source.path)
    where = f"#p{text.number}" if text.number is not None else "#ocr"
    quality: dict[str, Any] = text.quality()
    for passage in split_passages(
        text.words,
        text.number,
        size=documents.passage_words,
        overlap=documents.passage_overlap,
    ):
        item = Item(
            id=f"{name}{where}:t{passage.index}",
            tenant=tenant,
            source=Provenance(
                name,
                content_hash,
                text.number,
                passage.box.as_tuple() if passage.box is not None else None,
            ),
            modality="text",
            text=passage.text,
            metadata={**quality, "passage": passage.index},
        )
        yield Unit(item, text=passage.text)


def _record(source: SourceFile, tenant: str, text: PageText) -> PageRecord:
    return PageRecord(
        tenant,
        str(source.path),
        text.number or 0,
        text.source,
        text.confidence,
        text.rotation,
        text.low_confidence,
        text.note,
    )
