"""Exact nearest-neighbour search by inner product, with ties broken the documented way.

Vectors are L2-normalised, so the inner product is the cosine similarity. Every score is
computed (no approximate index), so an ANN error can never leak into a quality number.
Ties: among equal scores the item with the lower index ranks first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from turnout.core import InvalidInputError

# Query rows scored at once: bounds memory to block x items float32 scores.
BLOCK = 2048


@dataclass(frozen=True)
class SearchResult:
    """Top-k items per query: `indices[q, r]` is the item at rank r, `scores[q, r]` its score."""

    indices: NDArray[np.int64]
    scores: NDArray[np.float32]


def _check(queries: NDArray[np.float32], items: NDArray[np.float32]) -> None:
    if queries.ndim != 2 or items.ndim != 2 or queries.shape[1] != items.shape[1]:
        raise InvalidInputError(
            f"cannot compare query vectors of shape {queries.shape} with item vectors "
            f"of shape {items.shape}: both must be [n, d] with the same d"
        )


def score_blocks(
    queries: NDArray[np.float32], items: NDArray[np.float32], block: int = BLOCK
) -> Iterator[tuple[int, NDArray[np.float32]]]:
    """Yield `(first query row, scores [rows, n_items])` in blocks of query rows."""
    _check(queries, items)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    x = np.ascontiguousarray(items, dtype=np.float32)
    for start in range(0, len(q), block):
        yield start, q[start : start + block] @ x.T


def top_k_rows(
    scores: NDArray[np.float32], k: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Top-k per row of a score matrix, score descending, lower index first among ties."""
    n_rows, n_items = scores.shape
    k = min(k, n_items)
    indices = np.empty((n_rows, k), dtype=np.int64)
    if k == 0:
        return indices, np.empty((n_rows, 0), dtype=np.float32)
    kth = np.partition(scores, n_items - k, axis=1)[:, n_items - k]
    for row in range(n_rows):
        candidates = np.flatnonzero(scores[row] >= kth[row])
        # lexsort keys run last-first: score descending, then index ascending.
        order = np.lexsort((candidates, -scores[row, candidates]))
        indices[row] = candidates[order[:k]]
    picked = np.take_along_axis(scores, indices, axis=1).astype(np.float32)
    return indices, picked


def search_exact(
    queries: NDArray[np.float32],
    items: NDArray[np.float32],
    k: int,
    *,
    backend: Literal["numpy", "faiss"] = "numpy",
) -> SearchResult:
    """Exact top-k by inner product for every query.

    `numpy` applies the tie rule everywhere. `faiss` uses an `IndexFlatIP` (also exact,
    faster on big galleries); its lists are re-sorted by the tie rule, but which of several
    items tied at the k-th place makes the list is FAISS's choice.
    """
    _check(queries, items)
    if backend == "faiss":
        return _search_faiss(queries, items, k)
    all_indices, all_scores = [], []
    for _, block in score_blocks(queries, items):
        indices, scores = top_k_rows(block, k)
        all_indices.append(indices)
        all_scores.append(scores)
    if not all_indices:
        empty = min(k, len(items))
        return SearchResult(np.empty((0, empty), np.int64), np.empty((0, empty), np.float32))
    return SearchResult(np.concatenate(all_indices), np.concatenate(all_scores))


def _search_faiss(queries: NDArray[np.float32], items: NDArray[np.float32], k: int) -> SearchResult:
    import faiss

    x = np.ascontiguousarray(items, dtype=np.float32)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    k = min(k, len(x))
    scores, indices = index.search(q, k)
    order = np.lexsort((indices, -scores), axis=1)
    return SearchResult(
        np.take_along_axis(indices, order, axis=1).astype(np.int64),
        np.take_along_axis(scores, order, axis=1).astype(np.float32),
    )
