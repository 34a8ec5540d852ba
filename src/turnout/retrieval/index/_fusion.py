"""Fusing ranked lists from several retrievers into one ranking of pages.

Each retriever's hits (page images, or passages) are grouped by page: a page's rank in a
retriever is the rank of its best hit among distinct pages, its score the best hit's.
Reciprocal rank fusion (the default) scores a page sum(w_r / (rrf_k + rank_r)); weighted
fusion sums w_r times the retriever's score min-max scaled to [0, 1] over its pages. A
page missing from a retriever's list adds nothing for it. Each fused page keeps the
passages that brought it in, with their score and rank in each retriever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from turnout.core import InvalidInputError

from ._types import FUSIONS, RETRIEVERS, Hit, Item, Provenance

PageKey = tuple[str, int | None]
_QUALITY = ("text_source", "ocr_confidence", "rotation", "low_confidence")


@dataclass(frozen=True)
class PassageMatch:
    """A passage that brought its page in: its score and rank (from 1) in each retriever."""

    item: Item
    scores: dict[str, float]
    ranks: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "item_id": self.item.id,
            "page": self.item.source.page,
            "box": list(self.item.source.box) if self.item.source.box else None,
            "text": self.item.text,
            "scores": {r: round(s, 6) for r, s in self.scores.items()},
            "ranks": self.ranks,
        }


@dataclass(frozen=True)
class PageHit:
    """One fused result: a page (or an image) with its provenance, the fused score, its
    rank from 1, each retriever's best score and page rank, and the contributing passages."""

    item: Item
    score: float
    rank: int
    scores: dict[str, float]
    ranks: dict[str, int]
    passages: tuple[PassageMatch, ...]

    @property
    def key(self) -> PageKey:
        return (self.item.source.source, self.item.source.page)

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "source": self.item.source.source,
            "page": self.item.source.page,
            "content_hash": self.item.source.content_hash,
            "item_id": self.item.id,
            "modality": self.item.modality,
            "scores": {r: round(s, 6) for r, s in self.scores.items()},
            "ranks": self.ranks,
            "meta": self.item.metadata,
            "passages": [p.to_json() for p in self.passages],
        }


def check_fusion(
    method: str, weights: Mapping[str, float] | None, retrievers: Sequence[str]
) -> dict[str, float]:
    """Validate a fusion method and weights; returns a weight for each retriever (default 1)."""
    if method not in FUSIONS:
        raise InvalidInputError(f"fusion {method!r}: expected one of {', '.join(FUSIONS)}")
    given = dict(weights or {})
    for name, weight in given.items():
        if name not in RETRIEVERS:
            raise InvalidInputError(f"weight for {name!r}: retrievers are {', '.join(RETRIEVERS)}")
        if not weight >= 0:
            raise InvalidInputError(f"weight for {name!r} must be 0 or more, got {weight}")
    return {r: float(given.get(r, 1.0)) for r in retrievers}


def _page_item(hits: Sequence[Hit], key: PageKey) -> Item:
    """The page's own item when a retriever found it; otherwise one built from a passage."""
    for hit in hits:
        if hit.item.modality in ("page", "image"):
            return hit.item
    first = hits[0].item
    source, page = key
    return Item(
        id=f"{source}#p{page}" if page is not None else source,
        tenant=first.tenant,
        source=Provenance(source, first.source.content_hash, page),
        modality="page" if page is not None else "image",
        metadata={q: first.metadata[q] for q in _QUALITY if q in first.metadata},
    )


def fuse_pages(
    ranked: Mapping[str, Sequence[Hit]],
    *,
    method: str = "rrf",
    weights: Mapping[str, float] | None = None,
    rrf_k: int = 60,
    k: int = 10,
) -> list[PageHit]:
    """The top k pages by fusing each retriever's hits (see the module docstring)."""
    if k < 1:
        raise InvalidInputError(f"k must be at least 1, got {k}")
    if rrf_k < 1:
        raise InvalidInputError(f"rrf_k must be at least 1, got {rrf_k}")
    weight = check_fusion(method, weights, list(ranked))
    page_rank: dict[str, dict[PageKey, int]] = {}
    page_score: dict[str, dict[PageKey, float]] = {}
    hits_of: dict[PageKey, list[Hit]] = {}
    passages: dict[PageKey, dict[str, tuple[Item, dict[str, float], dict[str, int]]]] = {}
    for retriever, hits in ranked.items():
        ranks = page_rank.setdefault(retriever, {})
        scores = page_score.setdefault(retriever, {})
        for hit in hits:
            key = (hit.item.source.source, hit.item.source.page)
            if key not in ranks:
                ranks[key] = len(ranks) + 1
                scores[key] = hit.score
            hits_of.setdefault(key, []).append(hit)
            if hit.item.modality == "text":
                entry = passages.setdefault(key, {}).setdefault(hit.item.id, (hit.item, {}, {}))
                entry[1].setdefault(retriever, hit.score)
                entry[2].setdefault(retriever, hit.rank)
    fused: dict[PageKey, float] = {}
    for retriever, ranks in page_rank.items():
        w = weight[retriever]
        if method == "rrf":
            for key, rank in ranks.items():
                fused[key] = fused.get(key, 0.0) + w / (rrf_k + rank)
        else:
            scores = page_score[retriever]
            low, high = min(scores.values(), default=0.0), max(scores.values(), default=0.0)
            for key, score in scores.items():
                scaled = (score - low) / (high - low) if high > low else 1.0
                fused[key] = fused.get(key, 0.0) + w * scaled

    def best_rank(key: PageKey) -> int:
        return min(r[key] for r in page_rank.values() if key in r)

    order = sorted(fused, key=lambda key: (-fused[key], best_rank(key), key[0], key[1] or 0))
    out: list[PageHit] = []
    for key in order[:k]:
        found = sorted(passages.get(key, {}).values(), key=lambda e: (min(e[2].values()), e[0].id))
        out.append(
            PageHit(
                item=_page_item(hits_of[key], key),
                score=fused[key],
                rank=len(out) + 1,
                scores={r: s[key] for r, s in page_score.items() if key in s},
                ranks={r: ranks[key] for r, ranks in page_rank.items() if key in ranks},
                passages=tuple(PassageMatch(i, s, r) for i, s, r in found),
            )
        )
    return out
