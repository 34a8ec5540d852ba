"""Dense text, BM25 and fused retrieval over passages, the same on every backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from turnout.core import InvalidInputError
from turnout.retrieval.index import (
    CollectionMismatchError,
    DocumentOptions,
    create_collection,
    fuse_pages,
    hybrid_search,
    index_sources,
)

from ..index.helpers import BACKENDS, settings_for
from .corpus import MANUAL, manual_pdf

QUERIES = {
    # paraphrases (dense text finds them) with a word of the page (BM25 finds them)
    "when does finance pay supplier invoices": 2,
    "which class do staff travel in by train": 3,
    "how to store flammable solvents safely": 4,
    "replacing worn seals on the hydraulic pump": 1,
}


def _documents(encoder: Any, **options: Any) -> DocumentOptions:
    return DocumentOptions("minilm", encoder.fingerprint, images=False, **options)


@pytest.fixture
def manual(tmp_path: Path) -> Path:
    return manual_pdf(tmp_path / "docs" / "manual.pdf")


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_retriever_and_the_fusion_find_the_right_page(
    backend: str, tmp_path: Path, manual: Path, minilm: Any
) -> None:
    settings = settings_for(tmp_path, backend)
    with create_collection(
        settings, "docs", minilm.dim, encoder=minilm, documents=_documents(minilm)
    ) as docs:
        report = index_sources(docs, minilm, [manual.parent], tenant="acme")
        assert (report.items_written, report.pages_text_layer, report.pages_ocr) == (4, 4, 0)
        for query, page in QUERIES.items():
            for retrievers in (["text"], ["bm25"], None):
                hits = hybrid_search(
                    docs, minilm, tenant="acme", text=query, k=3, retrievers=retrievers
                )
                assert hits[0].item.source.page == page, (query, retrievers, hits[0].ranks)
                assert hits[0].item.source.source == str(manual.resolve())
        top = hybrid_search(docs, minilm, tenant="acme", text="supplier invoices", k=4)[0]
        assert set(top.scores) == {"text", "bm25"} and top.ranks == {"text": 1, "bm25": 1}
        assert top.score == pytest.approx(2 / 61)  # RRF, k=60: 1/61 from each retriever
        (passage,) = top.passages
        assert passage.item.modality == "text" and passage.item.source.page == 2
        assert passage.item.text == " ".join(MANUAL[1].split())
        assert passage.item.source.box is not None
        left, upper, right, lower = passage.item.source.box
        assert 0 < left < right < 1 and 0 < upper < lower < 0.5
        assert passage.item.metadata["text_source"] == "text-layer"
        assert set(passage.scores) == {"text", "bm25"}


def test_backends_agree_on_the_fused_ranking(tmp_path: Path, manual: Path, minilm: Any) -> None:
    rankings = {}
    for backend in BACKENDS:
        settings = settings_for(tmp_path / backend, backend)
        with create_collection(
            settings, "docs", minilm.dim, encoder=minilm, documents=_documents(minilm)
        ) as docs:
            index_sources(docs, minilm, [manual.parent], tenant="acme")
            hits = hybrid_search(docs, minilm, tenant="acme", text="pump seals and valves", k=4)
            rankings[backend] = [h.item.source.page for h in hits]
            dense = hybrid_search(
                docs, minilm, tenant="acme", text="pump seals", k=4, retrievers=["text"]
            )
            rankings[backend + "-text-scores"] = [round(h.scores["text"], 4) for h in dense]
    assert rankings["edge"] == rankings["server"] == rankings["faiss"]
    assert rankings["edge"][0] == 1
    assert rankings["edge-text-scores"] == rankings["server-text-scores"]
    assert rankings["edge-text-scores"] == rankings["faiss-text-scores"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_tenant_sees_or_is_scored_by_another_tenants_passages(
    backend: str, tmp_path: Path, minilm: Any
) -> None:
    ours = manual_pdf(tmp_path / "ours" / "manual.pdf")
    theirs = manual_pdf(
        tmp_path / "theirs" / "other.pdf",
        ("Secret invoice ledger of the other tenant, invoices invoices invoices.",) * 3,
    )
    settings = settings_for(tmp_path, backend)
    with create_collection(
        settings, "docs", minilm.dim, encoder=minilm, documents=_documents(minilm)
    ) as docs:
        index_sources(docs, minilm, [ours.parent], tenant="acme")
        alone = hybrid_search(docs, minilm, tenant="acme", text="invoices", k=4)
        index_sources(docs, minilm, [theirs.parent], tenant="globex")
        shared = hybrid_search(docs, minilm, tenant="acme", text="invoices", k=4)
        assert {h.item.source.source for h in shared} == {str(ours.resolve())}
        assert all(p.item.tenant == "acme" for h in shared for p in h.passages)
        # BM25's IDF comes from the tenant's own passages: the other tenant's moves nothing.
        assert [round(h.scores.get("bm25", 0), 4) for h in shared] == [
            round(h.scores.get("bm25", 0), 4) for h in alone
        ]
        assert hybrid_search(docs, minilm, tenant="initech", text="invoices", k=4) == []


def test_fusion_and_retrievers_are_chosen_per_collection_and_per_query(
    tmp_path: Path, manual: Path, minilm: Any
) -> None:
    settings = settings_for(tmp_path, "edge")
    options = _documents(minilm, fusion="weighted", weights={"text": 0.0, "bm25": 1.0})
    with create_collection(settings, "docs", minilm.dim, encoder=minilm, documents=options) as docs:
        index_sources(docs, minilm, [manual.parent], tenant="acme")
        query = "gloves"  # BM25 finds only page 4; dense text ranks every page
        weighted = hybrid_search(docs, minilm, tenant="acme", text=query, k=4)
        # Weight 0 for dense text: only BM25's pages score, scaled to 1 at the best.
        assert weighted[0].item.source.page == 4 and weighted[0].score == pytest.approx(1.0)
        assert all(h.score == 0 for h in weighted[1:])
        rrf = hybrid_search(docs, minilm, tenant="acme", text=query, k=4, fusion="rrf")
        assert rrf[0].item.source.page == 4
        assert rrf[0].score == pytest.approx(1 / 61)  # the collection's weights still hold
        even = hybrid_search(
            docs, minilm, tenant="acme", text=query, k=4, fusion="rrf", weights={"text": 1}
        )
        assert even[0].item.source.page == 4
        assert even[0].score == pytest.approx(1 / (60 + even[0].ranks["text"]) + 1 / 61)
        lexical = hybrid_search(docs, None, tenant="acme", text=query, k=4, retrievers=["bm25"])
        assert [h.item.source.page for h in lexical] == [4]
        with pytest.raises(InvalidInputError, match="retriever 'image'"):
            hybrid_search(docs, minilm, tenant="acme", text=query, retrievers=["image"])
        with pytest.raises(InvalidInputError, match="fusion 'max'"):
            hybrid_search(docs, minilm, tenant="acme", text=query, fusion="max")
        with pytest.raises(InvalidInputError, match="query text is empty"):
            hybrid_search(docs, minilm, tenant="acme", text="   ")


def test_rrf_and_weighted_fusion_by_hand() -> None:
    from turnout.retrieval.index import Hit, Item, Provenance

    def hit(page: int, score: float, rank: int) -> Hit:
        item = Item(f"d#p{page}:t0", "t", Provenance("d", "h", page), "text", "x")
        return Hit(item, score, rank)

    ranked = {
        "text": [hit(1, 0.9, 1), hit(2, 0.5, 2), hit(1, 0.4, 3)],
        "bm25": [hit(2, 7.0, 1), hit(3, 1.0, 2)],
    }
    rrf = fuse_pages(ranked, k=3)
    assert [h.item.source.page for h in rrf] == [2, 1, 3]
    assert rrf[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert rrf[1].ranks == {"text": 1} and len(rrf[1].passages) == 1
    weighted = fuse_pages(ranked, method="weighted", weights={"text": 2.0}, k=3)
    # text scaled over pages {1: 0.9, 2: 0.5} -> 1, 0; bm25 over {2: 7, 3: 1} -> 1, 0.
    assert [(h.item.source.page, h.score) for h in weighted] == [(1, 2.0), (2, 1.0), (3, 0.0)]
    assert weighted[0].item.modality == "page" and weighted[0].item.id == "d#p1"


def test_a_collection_with_page_images_adds_the_image_retriever(
    tmp_path: Path, manual: Path, minilm: Any, encoder: Any
) -> None:
    settings = settings_for(tmp_path, "faiss")
    options = DocumentOptions("minilm", minilm.fingerprint, text_dim=minilm.dim)
    with create_collection(
        settings, "docs", encoder.dim, encoder=encoder, documents=options
    ) as docs:
        with pytest.raises(InvalidInputError, match="pass it as text_encoder"):
            index_sources(docs, encoder, [manual.parent], tenant="acme")
        report = index_sources(docs, encoder, [manual.parent], tenant="acme", text_encoder=minilm)
        assert report.items_written == 8  # 4 page images and 4 passages
        hits = hybrid_search(docs, encoder, minilm, tenant="acme", text="supplier invoices", k=4)
        assert hits[0].item.source.page == 2
        assert set(hits[0].scores) == {"image", "text", "bm25"}
        assert hits[0].item.modality == "page" and hits[0].item.id.endswith("#p2")
        with pytest.raises(CollectionMismatchError, match="text encoder"):
            hybrid_search(docs, encoder, encoder, tenant="acme", text="invoices")
