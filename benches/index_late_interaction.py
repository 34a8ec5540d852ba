"""Late-interaction storage: bytes per item against a single-vector index, and two-stage recall.

N synthetic items of 64 to 1,024 token vectors (dimension 128, seeded). Token vectors of
one item cluster around a few topics (4 to 16), as patch and token embeddings of one page
do; a query is 32 noisy tokens drawn from one item's topics. Ground truth is exhaustive
MaxSim over every item's full float32 token vectors.

Each configuration (backend, codes, pool factor, sketch size) goes into a collection
through `Collection.upsert` and is searched one query at a time through
`Collection.search` in two stages: `--candidates` items by the first stage (MaxSim over
each item's sketch of at most S centroids; S = 0 is the mean-pooled single vector), then
MaxSim over the stored (pooled, quantized) multivectors of those candidates.

Bytes: `Collection.size_bytes()` after `optimize()`, divided by N, for the late-interaction
collection and for a single-vector collection of the same items and payloads on the same
backend (its one vector per item: the mean-pooled token vector). The Qdrant server
backend runs in qdrant-client's local mode, whose `size_bytes` is an estimate of dense
vectors only, so its bytes are not comparable and are left out.

    .venv/bin/python benches/index_late_interaction.py [--n 20000] [--queries 100] \
        [--configs faiss:scalar:1:8,edge:scalar:1:8] [--write FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "src"))

DIM = 128
NOISE = 0.6


def normalise(v: Any) -> Any:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


TOPICS = 1000
_POOL: dict[int, Any] = {}


def topic_pool(seed: int) -> Any:
    """Topics shared across items, so several items are genuinely near one query."""
    if seed not in _POOL:
        rng = np.random.default_rng((seed, 2**31))
        _POOL[seed] = normalise(rng.standard_normal((TOPICS, DIM), dtype=np.float32))
    return _POOL[seed]


def item(seed: int, i: int) -> tuple[Any, Any]:
    """Item i's topics and token vectors, regenerated identically on demand."""
    rng = np.random.default_rng((seed, i))
    topics = topic_pool(seed)[rng.choice(TOPICS, int(rng.integers(4, 17)), replace=False)]
    n = int(rng.integers(64, 1025))
    tokens = topics[rng.integers(0, len(topics), n)]
    noise = rng.standard_normal((n, DIM), dtype=np.float32) * (NOISE / np.sqrt(DIM))
    return topics, normalise(tokens + noise).astype(np.float32)


def items(seed: int, n: int) -> Iterator[tuple[int, Any]]:
    for i in range(n):
        yield i, item(seed, i)[1]


def make_queries(seed: int, n_items: int, n: int) -> tuple[list[int], Any]:
    rng = np.random.default_rng((seed, 10**9))
    targets = rng.choice(n_items, n, replace=False).tolist()
    out = []
    for t in targets:
        topics, _ = item(seed, t)
        picks = topics[rng.integers(0, len(topics), 32)]
        noise = rng.standard_normal((32, DIM), dtype=np.float32) * (NOISE / np.sqrt(DIM))
        out.append(normalise(picks + noise).astype(np.float32))
    return targets, np.stack(out)


def exhaustive_scores(seed: int, n: int, queries: Any) -> Any:
    """MaxSim of every query with every item over the full float32 token vectors."""
    flat = queries.reshape(-1, DIM)
    scores = np.empty((len(queries), n), dtype=np.float32)
    for i, tokens in items(seed, n):
        sims = (flat @ tokens.T).max(axis=1).reshape(len(queries), -1).sum(axis=1)
        scores[:, i] = sims
    return scores


DEFAULT_CONFIGS = (
    "faiss:scalar:1:0,faiss:none:1:8,faiss:scalar:1:8,faiss:binary:1:8,faiss:scalar:4:8,"
    "edge:scalar:1:8,server:scalar:1:8"
)


def load() -> float:
    return os.getloadavg()[0]


def fill(coll: Any, seed: int, n: int, *, multi: bool, batch: int = 100) -> float:
    """Upsert the N items (multivectors, or their mean-pooled vectors); seconds taken."""
    from turnout.retrieval.index import Item, Provenance

    started = time.perf_counter()
    batch_items: list[Any] = []
    batch_vecs: list[Any] = []
    for i, tokens in items(seed, n):
        batch_items.append(Item(str(i), "bench", Provenance(f"d{i}", f"h{i}", page=1), "page"))
        batch_vecs.append(tokens if multi else normalise(tokens.mean(axis=0)))
        if len(batch_items) == batch or i == n - 1:
            if multi:
                coll.upsert(batch_items, multivectors=batch_vecs)
            else:
                coll.upsert(batch_items, np.stack(batch_vecs))
            batch_items, batch_vecs = [], []
    coll.optimize()
    return time.perf_counter() - started


def settings_for(root: Path, backend: str) -> Any:
    from turnout.core import load_settings

    index: dict[str, Any] = {"backend": backend, "path": root / "ix"}
    if backend == "server":
        index["url"] = str(root / "qdrant-local")
    return load_settings(home=root, index=index)


def single_vector_bytes(root: Path, backend: str, seed: int, n: int) -> float | None:
    """Bytes per item of a single-vector collection of the same items on `backend`."""
    from turnout.retrieval.index import create_collection

    if backend == "server":
        return None
    settings = settings_for(root / f"single-{backend}", backend)
    with create_collection(settings, "single", DIM) as coll:
        fill(coll, seed, n, multi=False)
        return float(coll.size_bytes()) / n


def run_config(
    root: Path,
    seed: int,
    n: int,
    config: str,
    queries: Any,
    truth: Any,
    candidates: int,
    single: dict[str, float | None],
) -> dict[str, Any]:
    from turnout.retrieval.index import MultivectorOptions, create_collection

    backend, quant, pool, sketch = config.split(":")
    options = MultivectorOptions(
        dim=DIM,
        quantization=quant,  # type: ignore[arg-type]
        pool_factor=int(pool),
        sketch=int(sketch),
    )
    settings = settings_for(root / config.replace(":", "-"), backend)
    load_before = load()
    with create_collection(settings, "late", DIM, multivector=options) as coll:
        build = fill(coll, seed, n, multi=True)
        size = coll.size_bytes() / n if backend != "server" else None
        # The first search after a write builds what the first stage reads (FAISS: the
        # tenant's sketches in memory); timed on its own, not in the percentiles.
        t0 = time.perf_counter()
        coll.search(None, tenant="bench", k=10, multivector=queries[0], candidates=candidates)
        cold = (time.perf_counter() - t0) * 1000
        found = 0
        times = []
        for q, t in zip(queries, truth, strict=True):
            t0 = time.perf_counter()
            hits = coll.search(None, tenant="bench", k=10, multivector=q, candidates=candidates)
            times.append(time.perf_counter() - t0)
            found += len({int(h.item.id) for h in hits} & set(t.tolist()))
    if backend not in single:
        single[backend] = single_vector_bytes(root, backend, seed, n)
    base = single[backend]
    ms = np.array(times) * 1000
    return {
        "backend": backend,
        "quant": quant,
        "pool": int(pool),
        "sketch": int(sketch),
        "bytes": size,
        "single": base,
        "ratio": size / base if size is not None and base else None,
        "recall": found / (10 * len(queries)),
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "build": build,
        "cold": cold,
        "load": max(load_before, load()),
    }


def codes_study(seed: int, n: int, queries: Any, truth: Any) -> list[tuple[str, float, float]]:
    """Recall@10 of exhaustive MaxSim over every item's token vectors after a code, with no
    first stage: how much of the exhaustive top 10 each code could keep at best, and its
    bytes per token vector (codebooks left out; they are shared by all items)."""
    import importlib

    faiss: Any = importlib.import_module("faiss")  # untyped here: its stubs are partial

    docs = [tokens for _, tokens in items(seed, n)]
    lengths = [len(d) for d in docs]
    every = np.concatenate(docs)
    rng = np.random.default_rng((seed, 7))
    sample = every[rng.choice(len(every), min(len(every), 200_000), replace=False)]
    flat = queries.reshape(-1, DIM)

    def recall(decoded: Any) -> float:
        scores = np.empty((len(queries), n), dtype=np.float32)
        start = 0
        for i, length in enumerate(lengths):
            part = decoded[start : start + length]
            start += length
            scores[:, i] = (flat @ part.T).max(axis=1).reshape(len(queries), -1).sum(axis=1)
        top = np.argsort(-scores, axis=1)[:, :10]
        return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, truth, strict=True)]))

    def uniform(bits: int) -> Any:
        out = np.empty_like(every)
        levels = 2 ** (bits - 1) - 1
        start = 0
        for length in lengths:  # one scale per item, as `encode_multivector` stores int8
            part = every[start : start + length]
            scale = float(np.abs(part).max())
            out[start : start + length] = np.round(part / scale * levels) * (scale / levels)
            start += length
        return out

    rows = [("int8 (turnout `scalar`)", 128.0, recall(uniform(8)))]
    rows.append(("int4", 64.0, recall(uniform(4))))
    rows.append(("1 bit (turnout `binary`)", 16.0, recall(np.sign(every) / np.sqrt(DIM))))
    for m in (8, 16, 32):
        pq = faiss.ProductQuantizer(DIM, m, 8)
        pq.train(sample)
        rows.append(
            (f"PQ, {m} sub-vectors of 8 bits", float(m), recall(pq.decode(pq.compute_codes(every))))
        )
    kmeans = faiss.Kmeans(DIM, 4096, niter=10, spherical=True, seed=1)
    kmeans.train(sample)
    _, assign = kmeans.index.search(every, 1)
    centroids = kmeans.centroids[assign[:, 0]]
    residual = every - centroids
    rows.append(("centroid of 4,096 only (PLAID's first pass)", 2.0, recall(centroids)))
    weight = np.abs(residual).mean(axis=0)
    rows.append(
        (
            "centroid + 1-bit residual (ColBERTv2-style)",
            2.0 + DIM / 8,
            recall(centroids + np.sign(residual) * weight),
        )
    )
    pq = faiss.ProductQuantizer(DIM, 8, 8)
    pq.train(residual[: len(sample)])
    rows.append(
        (
            "centroid + PQ-8 residual",
            10.0,
            recall(centroids + pq.decode(pq.compute_codes(residual))),
        )
    )
    return rows


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--configs",
        default=DEFAULT_CONFIGS,
        help="comma-separated BACKEND:CODES:POOL:SKETCH (codes none, scalar or binary)",
    )
    parser.add_argument(
        "--study",
        action="store_true",
        help="also measure recall@10 of exhaustive MaxSim over coded vectors (int4, PQ, "
        "residual codes): memory grows with N (all token vectors at once)",
    )
    parser.add_argument("--write", type=Path, help="append the results to this markdown file")
    args = parser.parse_args()
    _targets, queries = make_queries(args.seed, args.n, args.queries)
    t0 = time.perf_counter()
    scores = exhaustive_scores(args.seed, args.n, queries)
    truth = np.argsort(-scores, axis=1)[:, :10]
    ranked = -np.sort(-scores, axis=1)
    gap = float(np.median(ranked[:, 9] - ranked[:, 10]))
    near = float(np.mean((scores >= ranked[:, 9:10] - 0.05).sum(axis=1)))
    print(f"exhaustive MaxSim over {args.n:,} items: {time.perf_counter() - t0:.1f} s", flush=True)
    mean_tokens = np.mean([len(item(args.seed, i)[1]) for i in range(min(args.n, 2000))])
    rows = []
    single: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.configs.split(","):
            row = run_config(
                Path(tmp), args.seed, args.n, config, queries, truth, args.candidates, single
            )
            rows.append(row)
            print(row, flush=True)
    lines = [
        "",
        f"### Late interaction: {args.n:,} items ({dt.date.today().isoformat()})",
        "",
        f"Command: `.venv/bin/python benches/index_late_interaction.py --n {args.n} "
        f"--queries {args.queries} --candidates {args.candidates} --configs {args.configs}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), "
        f"Python {platform.python_version()}.",
        f"{args.n:,} synthetic items of 64 to 1,024 token vectors (mean {mean_tokens:.0f}), "
        f"dimension {DIM}, clustered around 4 to 16 of {TOPICS} shared topics per item "
        f"(noise {NOISE}); {args.queries} queries of 32 noisy tokens from one item's topics. "
        "Recall@10 is against exhaustive MaxSim over the full float32 token vectors. "
        f"Exhaustive scores: median gap between the 10th and 11th item {gap:.3f} "
        f"(mean score of the 1st item {ranked[:, 0].mean():.1f}, of the 10th "
        f"{ranked[:, 9].mean():.1f}); on average {near:.1f} items lie within 0.05 of the "
        "10th score, so the boundary of the top 10 is a near-tie that any compression of "
        f"the stored vectors can reorder. First stage: {args.candidates} candidates "
        "by MaxSim over each item's sketch (sketch S: at most S centroids, float16), or by "
        "the mean-pooled vector (sketch 0); then MaxSim over the stored multivectors. "
        "Bytes/item: `size_bytes()` after `optimize()` over N (FAISS: the SQLite store's "
        "vectors, codes, sketches and payloads plus the serialized FAISS index; Qdrant Edge: "
        "the shard's allocated bytes on disk); single-vector: a collection of the same items "
        "holding only the mean-pooled 128-d vector, same backend. Latency: one query at a "
        "time through `Collection.search`, after one untimed first search (its time is the "
        "'first search' column: FAISS builds the tenant's sketch matrix then, after every "
        "write). Build: upserts in batches of 100 plus `optimize()`. Load: the highest "
        "1-minute load average seen around the configuration (2 cores, shared).",
        "",
        "| backend | codes | pool | sketch | bytes/item | single-vector bytes/item | ratio "
        "| recall@10 | p50 ms | p95 ms | first search ms | build s | load |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['quant']} | {r['pool']} | {r['sketch']} | "
            f"{fmt(r['bytes'], ',.0f')} | {fmt(r['single'], ',.0f')} | {fmt(r['ratio'], '.1f')} | "
            f"{r['recall']:.3f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['cold']:.0f} | "
            f"{r['build']:.0f} | "
            f"{r['load']:.1f} |"
        )
    if args.study:
        study = codes_study(args.seed, args.n, queries, truth)
        lines += [
            "",
            f"What codes could keep at best: recall@10 of exhaustive MaxSim over all {args.n:,} "
            "items with every token vector coded (no first stage, no pooling; codebooks "
            "trained on up to 200,000 of the token vectors and not counted in bytes/token).",
            "",
            "| code | bytes/token | recall@10 |",
            "| --- | ---: | ---: |",
        ]
        lines += [f"| {name} | {size:.0f} | {rec:.3f} |" for name, size, rec in study]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with args.write.open("a") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
