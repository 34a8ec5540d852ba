"""Hybrid search over a document collection: page images, dense text and BM25, fused.

    hits = hybrid_search(collection, clip, minilm, tenant="acme", text="pump seal torque")
    for hit in hits:
        print(hit.rank, hit.item.source.source, hit.item.source.page, hit.scores)
        for passage in hit.passages:
            print("   ", passage.item.source.box, passage.item.text[:60])

Each retriever runs on its own (the query embedded by the collection's encoder against
page images, by the text encoder against passages, and BM25 over passages), every one
scoped to the tenant; `_fusion.fuse_pages` then ranks pages. The retrievers, the fusion
method and its weights default to what the collection records and may be set per query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from turnout.core import InvalidInputError

from ._collection import Collection
from ._fusion import PageHit, check_fusion, fuse_pages
from ._types import Hit


def choose_retrievers(collection: Collection, retrievers: Sequence[str] | None) -> list[str]:
    """The retrievers to run: the given ones (checked against the collection) or all of its."""
    available = collection.documents().retrievers
    if retrievers is None:
        return list(available)
    chosen = list(dict.fromkeys(retrievers))
    if not chosen:
        raise InvalidInputError("give at least one retriever")
    for name in chosen:
        if name not in available:
            raise InvalidInputError(
                f"retriever {name!r}: collection {collection.name!r} offers {', '.join(available)}"
            )
    return chosen


def retrieve_each(
    collection: Collection,
    encoder: Any = None,
    text_encoder: Any = None,
    *,
    tenant: str,
    text: str,
    retrievers: Sequence[str] | None = None,
    candidates: int = 50,
    filters: dict[str, Any] | None = None,
) -> dict[str, list[Hit]]:
    """Each chosen retriever's own hits (`candidates` of them), before fusion."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("the query text is empty")
    if candidates < 1:
        raise InvalidInputError(f"candidates must be at least 1, got {candidates}")
    documents = collection.documents()
    chosen = choose_retrievers(collection, retrievers)
    out: dict[str, list[Hit]] = {}
    if "image" in chosen:
        if encoder is None:
            raise InvalidInputError(
                f"the image retriever needs collection {collection.name!r}'s encoder "
                f"({collection.spec.encoder})"
            )
        collection.check_encoder(encoder)
        vector = encoder.embed_texts([text])[0]
        wanted = {**(filters or {}), "modality": ["page", "image"]}
        out["image"] = collection.search(vector, tenant=tenant, k=candidates, filters=wanted)
    if "text" in chosen:
        model = text_encoder if documents.text_dim is not None else (text_encoder or encoder)
        if model is None:
            raise InvalidInputError(
                f"the text retriever needs the text encoder {documents.text_encoder!r}"
            )
        collection.check_text_encoder(model)
        vector = model.embed_texts([text])[0]
        out["text"] = collection.search_text(vector, tenant=tenant, k=candidates, filters=filters)
    if "bm25" in chosen:
        out["bm25"] = collection.search_lexical(text, tenant=tenant, k=candidates, filters=filters)
    return out


def hybrid_search(
    collection: Collection,
    encoder: Any = None,
    text_encoder: Any = None,
    *,
    tenant: str,
    text: str,
    k: int = 10,
    retrievers: Sequence[str] | None = None,
    fusion: str | None = None,
    weights: Mapping[str, float] | None = None,
    candidates: int | None = None,
    filters: dict[str, Any] | None = None,
) -> list[PageHit]:
    """The tenant's top k pages for a text query, fused across retrievers.

    `encoder` is the collection's own encoder (it embeds the query for page images, and
    is the text encoder of a text-only collection); `text_encoder` the one that embedded
    the passages. `retrievers` picks among `image`, `text` and `bm25`; `fusion` is `rrf`
    or `weighted`, `weights` per retriever; all default to the collection's choices.
    `candidates` hits are taken from each retriever (default: max(50, 5 k)).
    """
    documents = collection.documents()
    if k < 1:
        raise InvalidInputError(f"k must be at least 1, got {k}")
    method = fusion or documents.fusion
    chosen = choose_retrievers(collection, retrievers)
    weight = check_fusion(method, weights if weights is not None else documents.weights, chosen)
    ranked = retrieve_each(
        collection,
        encoder,
        text_encoder,
        tenant=tenant,
        text=text,
        retrievers=chosen,
        candidates=candidates or max(50, 5 * k),
        filters=filters,
    )
    return fuse_pages(ranked, method=method, weights=weight, rrf_k=documents.rrf_k, k=k)
