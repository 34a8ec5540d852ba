"""Recall@k on hand-worked cases (ties, several captions per image) and against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from turnout.core import InvalidInputError
from turnout.evaluation import (
    bootstrap_ci,
    image_to_text_ranks,
    recall_at_k,
    text_to_image_ranks,
)


def unit(*rows: list[float]) -> np.ndarray:
    m = np.array(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


# Three images along the axes; four captions, owners [0, 0, 1, 2].
IMAGES = unit([1, 0, 0], [0, 1, 0], [0, 0, 1])
TEXTS = unit([1, 0.1, 0], [0.1, 1, 0], [0, 1, 0.2], [1, 0, 0.5])
OWNERS = [0, 0, 1, 2]


def test_text_to_image_hand_worked() -> None:
    ranks = text_to_image_ranks(TEXTS, IMAGES, OWNERS)
    # caption 0 -> image 0 first; caption 1 (owned by 0) prefers image 1: rank 1;
    # caption 2 -> image 1 first; caption 3 (owned by 2) prefers image 0: rank 1.
    assert ranks.tolist() == [0, 1, 0, 1]
    assert recall_at_k(ranks, 1) == pytest.approx(0.5)
    assert recall_at_k(ranks, 2) == pytest.approx(1.0)


def test_image_to_text_is_a_hit_if_any_caption_ranks() -> None:
    ranks = image_to_text_ranks(IMAGES, TEXTS, OWNERS)
    # Image 0 scores captions 0.995, 0.100, 0, 0.894: order 0, 3, 1, 2. Its captions
    # rank 0 and 2, so it is a hit at k=1 through caption 0 alone.
    # Image 1 scores 0.100, 0.995, 0.981, 0: caption 1 (image 0's) beats its own caption 2.
    # Image 2 scores 0, 0, 0.196, 0.447: its caption 3 comes first.
    assert ranks.per_caption.tolist() == [0, 2, 1, 0]
    assert ranks.best.tolist() == [0, 1, 0]
    assert recall_at_k(ranks.best, 1) == pytest.approx(2 / 3)
    assert recall_at_k(ranks.best, 2) == 1.0


def test_ties_go_to_the_lower_index() -> None:
    images = unit([1, 0], [1, 0], [0, 1])  # images 0 and 1 are identical
    texts = unit([1, 0], [1, 0])
    ranks = text_to_image_ranks(texts, images, [0, 1])
    # Both captions score images 0 and 1 equally: image 0 wins the tie for both.
    assert ranks.tolist() == [0, 1]
    i2t = image_to_text_ranks(unit([1, 0]), unit([1, 0], [1, 0], [1, 0]), [0, 0, 0])
    assert i2t.per_caption.tolist() == [0, 1, 2] and i2t.best.tolist() == [0]


def brute_t2i(texts: np.ndarray, images: np.ndarray, owners: list[int]) -> list[int]:
    ranks = []
    for t, gold in zip(texts, owners, strict=True):
        order = sorted(range(len(images)), key=lambda j: (-float(t @ images[j]), j))
        ranks.append(order.index(gold))
    return ranks


def brute_i2t(images: np.ndarray, texts: np.ndarray, owners: list[int]) -> list[int]:
    best = []
    for i, image in enumerate(images):
        order = sorted(range(len(texts)), key=lambda c: (-float(image @ texts[c]), c))
        best.append(min(order.index(c) for c, o in enumerate(owners) if o == i))
    return best


def test_agrees_with_brute_force_including_ties() -> None:
    rng = np.random.default_rng(3)
    # Coarse values make many exact ties.
    images = np.round(rng.normal(size=(9, 4)), 0).astype(np.float32) + 0.5
    texts = np.round(rng.normal(size=(23, 4)), 0).astype(np.float32) + 0.5
    owners = sorted([i % 9 for i in range(23)])
    assert text_to_image_ranks(texts, images, owners).tolist() == brute_t2i(texts, images, owners)
    got = image_to_text_ranks(images, texts, owners).best.tolist()
    assert got == brute_i2t(images, texts, owners)


def test_bad_shapes_and_k() -> None:
    with pytest.raises(InvalidInputError, match="caption owners"):
        text_to_image_ranks(TEXTS, IMAGES, [0, 1])
    with pytest.raises(InvalidInputError, match="at least one caption"):
        image_to_text_ranks(IMAGES, TEXTS[:2], [0, 0])
    with pytest.raises(InvalidInputError, match="k must be"):
        recall_at_k(np.array([0]), 0)


def test_bootstrap_interval() -> None:
    hits = np.array([True] * 60 + [False] * 40)
    low, high = bootstrap_ci(hits, seed=1)
    assert 0.45 < low < 0.6 < high < 0.75
    assert bootstrap_ci(hits, seed=1) == (low, high)
    wide = bootstrap_ci(hits[::10], seed=1)
    assert wide[1] - wide[0] > high - low
    assert bootstrap_ci(np.ones(50, dtype=bool)) == (1.0, 1.0)
