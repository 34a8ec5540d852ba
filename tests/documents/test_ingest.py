"""Indexing documents: OCR pages counted and flagged, bad files skipped whole, the metric."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from turnout.retrieval.index import (
    DocumentOptions,
    PageQualityCollector,
    create_collection,
    freshness,
    hybrid_search,
    index_sources,
    page_quality,
)

from ..index.corpus import encrypted_pdf
from ..index.helpers import settings_for
from .corpus import huge_page_pdf, manual_pdf, zero_page_pdf


def test_scans_are_read_by_ocr_flagged_counted_and_searchable(
    tmp_path: Path, docs: Path, minilm: Any
) -> None:
    settings = settings_for(tmp_path, "edge")
    options = DocumentOptions("minilm", minilm.fingerprint, images=False)
    with create_collection(settings, "docs", minilm.dim, encoder=minilm, documents=options) as c:
        report = index_sources(c, minilm, [docs], tenant="acme")
        assert (report.pages_text_layer, report.pages_ocr, report.pages_low_confidence) == (4, 4, 1)
        assert report.warnings == [] and report.skipped == []
        status = freshness(c, tenant="acme")
        assert (status.pages, status.ocr_pages, status.low_confidence_pages) == (8, 4, 1)
        assert status.pages_without_text == 0

        (top,) = hybrid_search(c, minilm, tenant="acme", text="foghorn in the storm", k=1)
        assert top.item.source.source.endswith("scans.pdf") and top.item.source.page == 1
        assert top.item.metadata["text_source"] == "ocr" and top.item.metadata["rotation"] == 90
        assert top.item.metadata["ocr_confidence"] > 85 and not top.item.metadata["low_confidence"]
        faint = hybrid_search(
            c,
            minilm,
            tenant="acme",
            text="x",
            k=10,
            filters={"source": str(docs / "scans" / "faint.pdf")},
        )
        assert faint and all(h.item.metadata["low_confidence"] for h in faint)
        assert all(p.item.metadata["low_confidence"] for h in faint for p in h.passages)

    (quality,) = page_quality(settings)
    assert (quality.collection, quality.tenant, quality.low_confidence_pages) == ("docs", "acme", 1)
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(PageQualityCollector(settings))  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    assert 'turnout_index_low_confidence_pages{collection="docs",tenant="acme"} 1.0' in text


def test_bad_pdfs_are_skipped_whole_with_reasons_and_nothing_half_indexed(
    tmp_path: Path, minilm: Any
) -> None:
    folder = tmp_path / "docs"
    manual_pdf(folder / "good.pdf")
    encrypted_pdf(folder / "locked.pdf")
    zero_page_pdf(folder / "empty.pdf")
    huge_page_pdf(folder / "poster.pdf")
    broken = manual_pdf(folder / "broken.pdf")
    broken.write_bytes(broken.read_bytes()[:400])
    settings = settings_for(tmp_path, "faiss")
    options = DocumentOptions("minilm", minilm.fingerprint, images=False)
    with create_collection(settings, "docs", minilm.dim, encoder=minilm, documents=options) as c:
        report = index_sources(c, minilm, [folder], tenant="acme")
        reasons = {Path(path).name: reason for path, reason in report.skipped}
        assert set(reasons) == {"locked.pdf", "empty.pdf", "poster.pdf", "broken.pdf"}
        assert "encrypted PDF" in reasons["locked.pdf"]
        # PDFium itself refuses a PDF with an empty page tree (a format error); one it opened
        # with no pages would read "the PDF has no pages".
        assert reasons["empty.pdf"].startswith(("not a readable PDF", "the PDF has no pages"))
        assert "144,000,000 pixels" in reasons["poster.pdf"]
        assert "not a readable PDF" in reasons["broken.pdf"]
        assert report.items_written == 4 and report.pages_text_layer == 4
        sources = {
            Path(h.item.source.source).name
            for h in hybrid_search(c, minilm, tenant="acme", text="invoices and seals", k=10)
        }
        assert sources == {"good.pdf"}
        assert freshness(c, tenant="acme").failed == 4


def test_a_file_that_fails_part_way_leaves_nothing_of_itself(
    tmp_path: Path, minilm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from turnout.retrieval.index import UnreadableDocumentError, _documents

    pdf = manual_pdf(tmp_path / "docs" / "manual.pdf")
    real = _documents.page_text

    def fail_on_page_3(page: Any, number: int, options: Any) -> Any:
        if number == 3:
            raise UnreadableDocumentError(str(pdf), "page 3 cannot be read (test)")
        return real(page, number, options)

    monkeypatch.setattr(_documents, "page_text", fail_on_page_3)
    settings = settings_for(tmp_path, "edge")
    options = DocumentOptions("minilm", minilm.fingerprint, images=False)
    with create_collection(settings, "docs", minilm.dim, encoder=minilm, documents=options) as c:
        report = index_sources(c, minilm, [pdf.parent], tenant="acme")
        assert report.items_written == 0 and len(report.skipped) == 1
        assert c.count("acme") == 0 and freshness(c, tenant="acme").pages == 0
