"""The embedding cache on disk, and exact search with its tie rule (checked against FAISS)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from turnout.core import InvalidInputError
from turnout.retrieval import EmbeddingCache, search_exact, top_k_rows


def test_cache_round_trip_and_isolation(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "embeddings.sqlite"
    vector = np.arange(4, dtype=np.float32)
    with EmbeddingCache(path) as cache:
        cache.put_many("enc-a", "image", [("h1", vector), ("h2", vector * 2)])
        cache.remember_encoder("enc-a", {"model_id": "x"})
    with EmbeddingCache(path) as cache:
        found = cache.get_many("enc-a", "image", ["h1", "h2", "h3"])
        assert sorted(found) == ["h1", "h2"]
        np.testing.assert_array_equal(found["h2"], vector * 2)
        assert found["h1"].dtype == np.float32
        assert cache.get_many("enc-b", "image", ["h1"]) == {}
        assert cache.get_many("enc-a", "text", ["h1"]) == {}
        assert cache.count("enc-a") == 2


def test_top_k_breaks_ties_by_lower_index() -> None:
    scores = np.array([[0.5, 0.9, 0.5, 0.9, 0.1]], dtype=np.float32)
    indices, values = top_k_rows(scores, 3)
    assert indices.tolist() == [[1, 3, 0]]
    np.testing.assert_allclose(values, [[0.9, 0.9, 0.5]])
    assert top_k_rows(scores, 10)[0].tolist() == [[1, 3, 0, 2, 4]]


def test_search_exact_is_the_full_product() -> None:
    rng = np.random.default_rng(0)
    items = rng.normal(size=(50, 8)).astype(np.float32)
    queries = rng.normal(size=(7, 8)).astype(np.float32)
    result = search_exact(queries, items, 5)
    brute = np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(result.indices, brute)


def test_numpy_and_faiss_agree_without_ties() -> None:
    rng = np.random.default_rng(1)
    items = rng.normal(size=(200, 16)).astype(np.float32)
    queries = rng.normal(size=(30, 16)).astype(np.float32)
    ours = search_exact(queries, items, 10)
    theirs = search_exact(queries, items, 10, backend="faiss")
    np.testing.assert_array_equal(ours.indices, theirs.indices)
    np.testing.assert_allclose(ours.scores, theirs.scores, atol=1e-5)


def test_mismatched_dimensions_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="same d"):
        search_exact(np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32), 1)
