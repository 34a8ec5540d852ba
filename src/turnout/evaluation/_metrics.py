"""Recall@k for cross-modal retrieval, computed the way CLIP_benchmark computes it.

Scores are cosine similarities of L2-normalised embeddings, all of them (exact search).
Text-to-image: each caption queries every image; a hit if its own image is in the top k.
Image-to-text: each image queries every caption; a hit if any of its captions is in the
top k. Recall@k is the mean of hits over queries.

Ranks are 0-based. Ties: an item scored equal to the gold item ranks ahead of it only if
its index is lower (images in dataset order, captions in the order the dataset lists them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from turnout.core import InvalidInputError
from turnout.retrieval import score_blocks

# Image queries per block in image-to-text scoring; each is expanded once per caption.
_PAIR_BLOCK = 256


def _rank_of(scores: NDArray[np.float32], gold: NDArray[np.int64]) -> NDArray[np.int64]:
    """0-based rank of `gold[r]` in each row of `scores`, lower index first among ties."""
    gold_scores = np.take_along_axis(scores, gold[:, None], axis=1)
    above = (scores > gold_scores).sum(axis=1)
    columns = np.arange(scores.shape[1])[None, :]
    tied_before = ((scores == gold_scores) & (columns < gold[:, None])).sum(axis=1)
    ranks: NDArray[np.int64] = (above + tied_before).astype(np.int64)
    return ranks


def text_to_image_ranks(
    text_vectors: NDArray[np.float32],
    image_vectors: NDArray[np.float32],
    caption_image: Sequence[int] | NDArray[np.int64],
) -> NDArray[np.int64]:
    """For each caption, the rank of its own image among all images."""
    owners = np.asarray(caption_image, dtype=np.int64)
    if len(owners) != len(text_vectors):
        raise InvalidInputError(
            f"{len(text_vectors)} caption vectors but {len(owners)} caption owners"
        )
    ranks = np.empty(len(owners), dtype=np.int64)
    for start, scores in score_blocks(text_vectors, image_vectors):
        ranks[start : start + len(scores)] = _rank_of(scores, owners[start : start + len(scores)])
    return ranks


@dataclass(frozen=True)
class ImageToTextRanks:
    """`best[i]`: rank of image i's best-ranked caption; `per_caption[c]`: rank of caption c
    in the list its own image retrieves."""

    best: NDArray[np.int64]
    per_caption: NDArray[np.int64]


def image_to_text_ranks(
    image_vectors: NDArray[np.float32],
    text_vectors: NDArray[np.float32],
    caption_image: Sequence[int] | NDArray[np.int64],
) -> ImageToTextRanks:
    """For each image, the rank of each of its captions among all captions."""
    owners = np.asarray(caption_image, dtype=np.int64)
    if len(owners) != len(text_vectors):
        raise InvalidInputError(
            f"{len(text_vectors)} caption vectors but {len(owners)} caption owners"
        )
    n_images = len(image_vectors)
    if np.any(np.bincount(owners, minlength=n_images)[:n_images] == 0):
        raise InvalidInputError("every image needs at least one caption for image-to-text recall")
    per_caption = np.empty(len(owners), dtype=np.int64)
    for start, scores in score_blocks(image_vectors, text_vectors, block=_PAIR_BLOCK):
        stop = start + len(scores)
        captions = np.flatnonzero((owners >= start) & (owners < stop))
        rows = scores[owners[captions] - start]
        per_caption[captions] = _rank_of(rows, captions.astype(np.int64))
    best = np.full(n_images, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(best, owners, per_caption)
    return ImageToTextRanks(best=best, per_caption=per_caption)


def recall_at_k(ranks: NDArray[np.int64], k: int) -> float:
    """The share of queries whose gold item ranks in the top k (0-based rank < k)."""
    if k < 1:
        raise InvalidInputError(f"k must be at least 1, got {k}")
    if len(ranks) == 0:
        return float("nan")
    return float(np.mean(ranks < k))


def bootstrap_ci(
    hits: NDArray[np.bool_], *, resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `hits`, resampling queries."""
    n = len(hits)
    if n == 0 or resamples < 1:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = hits.astype(np.float64)
    means = np.empty(resamples, dtype=np.float64)
    # Resample in chunks so memory stays near 16 MB whatever the number of queries.
    step = max(1, 2_000_000 // n)
    for start in range(0, resamples, step):
        count = min(step, resamples - start)
        picks = rng.integers(0, n, size=(count, n))
        means[start : start + count] = values[picks].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)
