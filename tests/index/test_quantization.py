"""Quantized dense vectors on the Qdrant backends: the codes are searched, the originals decide.

A quantized collection searches compressed codes first (int8, TurboQuant, 1 bit) and
re-scores the best `oversampling` times k with the original vectors, so its answers and
scores are the exact ones wherever the true top k are among those candidates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from turnout.core import ConfigError, InvalidInputError, load_settings
from turnout.retrieval.index import (
    CollectionMismatchError,
    create_collection,
    open_collection,
)

from .helpers import items, settings_for, unit_vectors

DIM = 64
# Candidates re-scored per hit, enough for each code at this size and dimension: the
# coarser the code, the more (1-bit codes of 64 values rank 1,000 vectors roughly).
CODES = {"scalar": 4, "turbo4": 10, "turbo2": 30, "binary": 60}


@pytest.mark.parametrize("backend", ["edge", "server"])
@pytest.mark.parametrize("codes", CODES)
def test_quantized_search_returns_the_exact_top_k(tmp_path: Path, backend: str, codes: str) -> None:
    settings = settings_for(tmp_path, backend, quantization=codes, oversampling=CODES[codes])
    vectors = unit_vectors(1_500, DIM)
    queries = unit_vectors(20, DIM, seed=5)
    with create_collection(settings, "q", DIM) as c:
        assert c.spec.quantization == codes
        c.upsert(items(1_000, "acme"), vectors[:1_000])
        c.upsert(items(500, "globex", prefix="g"), vectors[1_000:])
        for query in queries:
            hits = c.search(query, tenant="acme", k=10)
            exact = np.argsort(-(vectors[:1_000] @ query))[:10]
            assert [h.item.id for h in hits] == [f"item{i}" for i in exact]
            # Re-scored with the originals: the scores are the float cosines, not the codes'.
            assert np.allclose([h.score for h in hits], vectors[exact] @ query, atol=1e-4)
    with open_collection(settings_for(tmp_path, backend), "q") as c:
        assert c.spec.quantization == codes  # recorded, whatever the settings say now
        hits = c.search(queries[0], tenant="globex", k=3)
        assert {h.item.tenant for h in hits} == {"globex"}


def test_edge_searches_the_codes(tmp_path: Path) -> None:
    """Without re-scoring, Qdrant Edge answers from the codes: so the codes exist."""
    import qdrant_edge as q

    vectors = unit_vectors(1_000, DIM)
    query = unit_vectors(1, DIM, seed=9)[0]
    scores = {}
    for codes in ("none", "turbo2"):
        settings = settings_for(tmp_path / codes, "edge", quantization=codes)
        with create_collection(settings, "q", DIM) as c:
            c.upsert(items(1_000, "acme"), vectors)
            request = q.QueryRequest(
                limit=10,
                query=q.Query.Nearest(query.tolist(), using="dense"),
                params=q.SearchParams(quantization=q.QuantizationSearchParams(rescore=False)),
                with_payload=False,
            )
            scores[codes] = [h.score for h in c.backend.shard.query(request)]  # type: ignore[attr-defined]
    exact = np.sort(vectors @ query)[::-1][:10]
    assert np.allclose(scores["none"], exact, atol=1e-5)
    assert not np.allclose(scores["turbo2"], exact, atol=1e-3)


def test_faiss_refuses_quantization_with_the_way_out(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "faiss", quantization="turbo2")
    with pytest.raises(InvalidInputError, match=r"FAISS.*ivfpq.*index\.quantization to none"):
        create_collection(settings, "q", DIM)
    assert not (tmp_path / "indexes" / "q").exists()


def test_reopening_with_other_codes_is_refused(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "edge")
    create_collection(settings, "q", DIM).close()
    with pytest.raises(CollectionMismatchError, match="quantization none, not turbo4"):
        create_collection(settings, "q", DIM, exist_ok=True, quantization="turbo4")
    # Not asked for: the collection opens with what it has.
    create_collection(settings, "q", DIM, exist_ok=True).close()


def test_unknown_codes_are_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'index\.quantization'.*'turbo2'.*got 'int4'"):
        load_settings(home=tmp_path, index={"quantization": "int4"})
    with pytest.raises(ConfigError, match=r"'index\.oversampling'"):
        load_settings(home=tmp_path, index={"oversampling": 0.5})


def test_no_graph_scans_the_codes(tmp_path: Path) -> None:
    """`index.hnsw.m: 0` builds no graph: every search scans the codes, then re-scores."""
    settings = settings_for(tmp_path, "edge", quantization="turbo4", oversampling=10, hnsw={"m": 0})
    vectors = unit_vectors(3_000, DIM)
    with create_collection(settings, "scan", DIM) as c:
        c.upsert(items(3_000, "acme"), vectors)
        c.optimize()
        for query in unit_vectors(10, DIM, seed=4):
            exact = np.argsort(-(vectors @ query))[:10]
            assert [h.item.id for h in c.search(query, tenant="acme", k=10)] == [
                f"item{i}" for i in exact
            ]
