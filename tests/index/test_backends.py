"""The same operations on every backend give the same answers (the congruence test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from turnout.retrieval.index import (
    CollectionMismatchError,
    MultivectorOptions,
    create_collection,
    maxsim,
    open_collection,
)
from turnout.retrieval.index._late import normalise

from .helpers import BACKENDS, clustered_multivectors, items, settings_for, unit_vectors

DIM = 16


def _run_script(tmp: Path, backend: str) -> dict[str, object]:
    """One scripted sequence of operations; returns everything observable."""
    settings = settings_for(tmp, backend)
    out: dict[str, object] = {}
    vectors = unit_vectors(60, DIM)
    with create_collection(settings, "congruence", DIM) as c:
        c.upsert(items(40, "acme"), vectors[:40])
        c.upsert(items(20, "globex"), vectors[40:])
        queries = unit_vectors(5, DIM, seed=7)
        out["search"] = [
            [(h.item.id, round(h.score, 4)) for h in c.search(q, tenant="acme", k=7)]
            for q in queries
        ]
        out["filtered"] = [
            [h.item.id for h in c.search(q, tenant="acme", k=5, filters={"meta.group": 1})]
            for q in queries
        ]
        out["any"] = [
            h.item.id
            for h in c.search(queries[0], tenant="acme", k=50, filters={"modality": ["page"]})
        ]
        # Replace a vector, delete two, and check counts and bytes.
        c.upsert(items(1, "acme"), queries[:1])
        out["deleted"] = c.delete("acme", ["item3", "item5", "no-such-item"])
        out["counts"] = (c.count("acme"), c.count("globex"), c.count())
        out["after"] = [h.item.id for h in c.search(queries[0], tenant="acme", k=3)]
        out["provenance"] = c.search(queries[0], tenant="acme", k=1)[0].item
        assert c.size_bytes() > 0
    with open_collection(settings, "congruence") as c:
        out["reopened"] = [h.item.id for h in c.search(queries[0], tenant="acme", k=3)]
        out["reopened_count"] = c.count()
    return out


def test_all_backends_agree(tmp_path: Path) -> None:
    results = {b: _run_script(tmp_path / b, b) for b in BACKENDS}
    edge = results["edge"]
    for backend in ("server", "faiss"):
        for key, value in edge.items():
            assert results[backend][key] == value, (backend, key)
    # And the answers are the right ones, not just the same ones.
    assert edge["counts"] == (38, 20, 58)
    assert edge["after"][0] == "item0"  # replaced by the query itself
    hit = edge["provenance"]
    assert hit.source.source == "/corpus/item0.png" and hit.metadata == {"group": 0, "kind": "even"}


def test_search_is_exact_on_flat_backends(tmp_path: Path) -> None:
    vectors = unit_vectors(50, DIM)
    query = unit_vectors(1, DIM, seed=3)[0]
    expected = [f"item{i}" for i in np.argsort(-(vectors @ query))[:10]]
    for backend in BACKENDS:
        settings = settings_for(tmp_path / backend, backend)
        with create_collection(settings, "exact", DIM) as c:
            c.upsert(items(50, "t"), vectors)
            assert [h.item.id for h in c.search(query, tenant="t", k=10)] == expected, backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_dimension_is_refused(tmp_path: Path, backend: str) -> None:
    settings = settings_for(tmp_path, backend)
    with create_collection(settings, "dims", DIM) as c:
        with pytest.raises(CollectionMismatchError, match="16-dimensional"):
            c.upsert(items(1, "t"), unit_vectors(1, DIM + 1))
        with pytest.raises(CollectionMismatchError, match="16-dimensional"):
            c.search(unit_vectors(1, 8)[0], tenant="t")
    with pytest.raises(CollectionMismatchError, match="dimension 16, not 32"):
        create_collection(settings, "dims", 32, exist_ok=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_late_interaction_two_stage_matches_exhaustive_maxsim(tmp_path: Path, backend: str) -> None:
    settings = settings_for(tmp_path, backend)
    docs = clustered_multivectors(60, DIM, seed=1)
    options = MultivectorOptions(dim=DIM)
    with create_collection(settings, "late", DIM, multivector=options) as c:
        c.upsert(items(60, "t"), multivectors=docs)
        c.upsert(items(5, "other", prefix="x"), multivectors=docs[:5])
        rng = np.random.default_rng(5)
        for target in (3, 17, 42):
            query = docs[target][rng.choice(len(docs[target]), 6, replace=False)]
            query = query + 0.1 * rng.normal(size=query.shape).astype(np.float32)
            hits = c.search(None, tenant="t", k=5, multivector=query, candidates=60)
            exact = sorted(range(60), key=lambda i: -maxsim(normalise(query), normalise(docs[i])))[
                :5
            ]
            assert [h.item.id for h in hits] == [f"item{i}" for i in exact], backend
            best = maxsim(normalise(query), normalise(docs[exact[0]]))
            assert hits[0].score == pytest.approx(best, rel=1e-3)
            assert all(h.item.tenant == "t" for h in hits)


def test_faiss_quantized_and_pooled_multivectors_are_smaller(tmp_path: Path) -> None:
    docs = clustered_multivectors(40, DIM, seed=2, tokens=(30, 60))
    sizes = {}
    for name, options in {
        "none": MultivectorOptions(dim=DIM),
        "scalar": MultivectorOptions(dim=DIM, quantization="scalar"),
        "binary": MultivectorOptions(dim=DIM, quantization="binary"),
        "pooled": MultivectorOptions(dim=DIM, quantization="scalar", pool_factor=4),
    }.items():
        settings = settings_for(tmp_path / name, "faiss")
        with create_collection(settings, "late", DIM, multivector=options) as c:
            c.upsert(items(40, "t"), multivectors=docs)
            sizes[name] = c.backend.multivector_bytes()  # type: ignore[attr-defined]
            query = docs[7][:5]
            assert c.search(None, tenant="t", k=3, multivector=query)[0].item.id == "item7"
    assert sizes["scalar"] < sizes["none"] / 3
    assert sizes["binary"] < sizes["none"] / 20
    assert sizes["pooled"] < sizes["scalar"] / 3


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_faiss_index_options(tmp_path: Path, kind: str) -> None:
    settings = settings_for(tmp_path, "faiss", faiss={"kind": kind, "nlist": 4, "pq_m": 8})
    # Removing an id must not shift the others (an IDMap over IVF would).
    vectors = unit_vectors(600, DIM)
    with create_collection(settings, "ann", DIM) as c:
        c.upsert(items(600, "t"), vectors)
        base = type(c.backend._base()).__name__  # type: ignore[attr-defined]

        assert "item10" in [h.item.id for h in c.search(vectors[10], tenant="t", k=10)]
        c.delete("t", ["item10"])
        assert "item10" not in [h.item.id for h in c.search(vectors[10], tenant="t", k=5)]
        assert c.search(vectors[11], tenant="t", k=1)[0].item.id == "item11"
    assert base == ("IndexHNSWFlat" if kind == "hnsw" else "IndexIVFPQ")
    with open_collection(settings, "ann") as c:
        # PQ codes are lossy: the vector itself need only be among the first few.
        assert "item11" in [h.item.id for h in c.search(vectors[11], tenant="t", k=10)]


def test_faiss_rebuilds_a_stale_index_file_from_its_store(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "faiss")
    vectors = unit_vectors(20, DIM)
    with create_collection(settings, "stale", DIM) as c:
        c.upsert(items(10, "t"), vectors[:10])
    folder = tmp_path / "indexes" / "stale" / "faiss"
    saved = (folder / "vectors.faiss").read_bytes()
    with open_collection(settings, "stale") as c:
        c.upsert(items(20, "t")[10:], vectors[10:])
    # As if the process died before writing the index: the old file is back.
    (folder / "vectors.faiss").write_bytes(saved)
    (folder / "vectors.faiss.generation").write_text("1")
    with open_collection(settings, "stale") as c:
        assert c.search(vectors[15], tenant="t", k=1)[0].item.id == "item15"
        assert c.count() == 20


def _partial_queries(docs: list[np.ndarray], seed: int) -> list[np.ndarray]:  # type: ignore[type-arg]
    """Queries made of a few tokens of one item: they match part of it, as a question
    matches one region of a page, so the item's mean vector is a poor guide to them."""
    rng = np.random.default_rng(seed)
    out = []
    for target in rng.choice(len(docs), 8, replace=False):
        tokens = docs[target][rng.choice(len(docs[target]), 3, replace=False)]
        out.append(tokens + 0.3 * rng.normal(size=tokens.shape).astype(np.float32))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_sketch_first_stage_keeps_the_exhaustive_top_k(tmp_path: Path, backend: str) -> None:
    """With few candidates, the first stage (MaxSim over each item's sketch) still holds
    the items exhaustive MaxSim ranks first; another tenant's copies never crowd it."""
    settings = settings_for(tmp_path, backend)
    docs = clustered_multivectors(120, DIM, seed=3)
    with create_collection(settings, "late", DIM, multivector=MultivectorOptions(dim=DIM)) as c:
        assert c.spec.multivector is not None and c.spec.multivector.sketch == 8
        c.upsert(items(120, "t"), multivectors=docs)
        # Another tenant holds exact copies of every item: without the tenant in the first
        # stage they would take half of the candidates.
        c.upsert(items(120, "other", prefix="x"), multivectors=docs)
        for query in _partial_queries(docs, seed=4):
            hits = c.search(None, tenant="t", k=3, multivector=query, candidates=12)
            exact = sorted(range(120), key=lambda i: -maxsim(normalise(query), normalise(docs[i])))
            assert [h.item.id for h in hits] == [f"item{i}" for i in exact[:3]], backend
        # Filters narrow the first stage too (five filters: FAISS keeps sketches for four).
        query = _partial_queries(docs, seed=5)[0]
        exact = sorted(range(120), key=lambda i: -maxsim(normalise(query), normalise(docs[i])))
        narrow: list[tuple[str, object]] = [("meta.group", g) for g in range(3)]
        for key, value in [*narrow, ("modality", "image"), ("modality", "page")]:
            hits = c.search(
                None, tenant="t", k=2, filters={key: value}, multivector=query, candidates=8
            )
            want = [
                f"item{i}"
                for i in exact
                if (i % 3 if key == "meta.group" else ("image" if i % 2 else "page")) == value
            ][:2]
            assert [h.item.id for h in hits] == want, (backend, key, value)


def test_collections_recorded_before_sketches_keep_their_first_stage() -> None:
    from turnout.retrieval.index._types import CollectionSpec

    old = {"name": "late", "dim": DIM, "multivector": {"dim": DIM, "quantization": "scalar"}}
    spec = CollectionSpec.from_json(old)
    assert spec.multivector == MultivectorOptions(dim=DIM, quantization="scalar", sketch=0)
    assert CollectionSpec.from_json(
        {**old, "multivector": {"dim": DIM, "sketch": 4}}
    ).multivector == MultivectorOptions(dim=DIM, sketch=4)


def test_maxsim_rows_scores_every_item_as_maxsim_does() -> None:
    from turnout.retrieval.index._late import maxsim_rows, sketch_vectors

    docs = [normalise(d) for d in clustered_multivectors(7, DIM, seed=6, tokens=(1, 30))]
    sketches = [sketch_vectors(d, 4) for d in docs]
    assert all(1 <= len(s) <= 4 for s in sketches)
    starts = np.cumsum([0] + [len(s) for s in sketches[:-1]]).astype(np.int64)
    query = normalise(docs[2][:3])
    got = maxsim_rows(query, np.concatenate(sketches), starts)
    assert got == pytest.approx([maxsim(query, s) for s in sketches], rel=1e-5)
