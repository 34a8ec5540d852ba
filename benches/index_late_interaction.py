"""Late-interaction storage: bytes per item against a single-vector index, and two-stage recall.

N synthetic items of 64 to 1,024 token vectors (dimension 128, seeded). Token vectors of
one item cluster around a few topics (4 to 16), as patch and token embeddings of one page
do; a query is 32 noisy tokens drawn from one item's topics. Ground truth is exhaustive
MaxSim over every item's full float32 token vectors. Each storage option goes into a FAISS
collection through `Collection.upsert` (pooling and codes as stored) and is searched in
two stages: the mean-pooled single vector (exact, flat) for `--candidates`, then MaxSim over
the stored multivectors of those candidates.

Bytes per item = the stored single vector plus the stored multivector codes; the
single-vector index it is compared with stores the 128-d float32 vector alone (512 bytes).

    .venv/bin/python benches/index_late_interaction.py [--n 20000] [--queries 100] [--write FILE]
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
CONFIGS = (
    ("none", 1),
    ("scalar", 1),
    ("binary", 1),
    ("scalar", 8),
    ("binary", 4),
    ("scalar", 16),
    ("scalar", 32),
)


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


def exhaustive(seed: int, n: int, queries: Any, k: int = 10) -> Any:
    """Top-k items of each query by MaxSim over the full float32 token vectors."""
    flat = queries.reshape(-1, DIM)
    scores = np.empty((len(queries), n), dtype=np.float32)
    for i, tokens in items(seed, n):
        sims = (flat @ tokens.T).max(axis=1).reshape(len(queries), -1).sum(axis=1)
        scores[:, i] = sims
    return np.argsort(-scores, axis=1)[:, :k]


def run_config(
    root: Path, seed: int, n: int, quant: str, pool: int, queries: Any, truth: Any, candidates: int
) -> dict[str, Any]:
    from turnout.core import load_settings
    from turnout.retrieval.index import Item, MultivectorOptions, Provenance, create_collection

    settings = load_settings(home=root, index={"backend": "faiss", "path": root / "ix"})
    options = MultivectorOptions(dim=DIM, quantization=quant, pool_factor=pool)  # type: ignore[arg-type]
    started = time.perf_counter()
    coll = create_collection(settings, f"late-{quant}-{pool}", DIM, multivector=options)
    batch_items, batch_vecs = [], []
    tokens_stored = 0
    for i, tokens in items(seed, n):
        batch_items.append(Item(str(i), "bench", Provenance(f"d{i}", ""), "page"))
        batch_vecs.append(tokens)
        if len(batch_items) == 500 or i == n - 1:
            coll.upsert(batch_items, multivectors=batch_vecs)
            batch_items, batch_vecs = [], []
    build = time.perf_counter() - started
    multi = coll.backend.multivector_bytes()
    tokens_stored = coll.backend.db.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    found = 0
    times = []
    for q, t in zip(queries, truth, strict=True):
        t0 = time.perf_counter()
        hits = coll.search(None, tenant="bench", k=10, multivector=q, candidates=candidates)
        times.append(time.perf_counter() - t0)
        found += len({int(h.item.id) for h in hits} & set(t.tolist()))
    coll.close()
    per_item = (multi + n * DIM * 4) / n
    return {
        "quant": quant,
        "pool": pool,
        "bytes": per_item,
        "ratio": per_item / (DIM * 4),
        "recall": found / (10 * len(queries)),
        "p50": float(np.percentile(np.array(times) * 1000, 50)),
        "build": build,
        "items": tokens_stored,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", type=Path, help="append the results to this markdown file")
    args = parser.parse_args()
    _targets, queries = make_queries(args.seed, args.n, args.queries)
    t0 = time.perf_counter()
    truth = exhaustive(args.seed, args.n, queries)
    print(f"exhaustive MaxSim over {args.n:,} items: {time.perf_counter() - t0:.1f} s", flush=True)
    mean_tokens = np.mean([len(item(args.seed, i)[1]) for i in range(min(args.n, 2000))])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for quant, pool in CONFIGS:
            row = run_config(
                Path(tmp), args.seed, args.n, quant, pool, queries, truth, args.candidates
            )
            rows.append(row)
            print(row, flush=True)
    lines = [
        "",
        f"## Late-interaction storage and two-stage recall ({dt.date.today().isoformat()})",
        "",
        f"Command: `.venv/bin/python benches/index_late_interaction.py --n {args.n} "
        f"--queries {args.queries} --candidates {args.candidates}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), "
        f"Python {platform.python_version()}.",
        f"{args.n:,} synthetic items of 64 to 1,024 token vectors (mean {mean_tokens:.0f}), "
        f"dimension {DIM}, clustered around 4 to 16 of {TOPICS} shared topics per item "
        f"(noise {NOISE}); "
        f"{args.queries} queries of 32 noisy tokens from one item's topics. Recall@10 is "
        "against exhaustive MaxSim over the full float32 token vectors; the two-stage search "
        f"takes {args.candidates} candidates by the mean-pooled vector (FAISS flat), then "
        "MaxSim over the stored (pooled, quantized) multivectors. Bytes per item: stored "
        "single vector plus multivector codes, against 512 for a single-vector index. "
        "The data is synthetic and clustered by construction; how well pooling works on "
        "real ColPali-family embeddings has to be measured when those encoders land.",
        "",
        "| codes | pool factor | bytes/item | x single-vector | recall@10 | p50 ms | build s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['quant']} | {r['pool']} | {r['bytes']:,.0f} | {r['ratio']:.1f} | "
            f"{r['recall']:.3f} | {r['p50']:.1f} | {r['build']:.0f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with args.write.open("a") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
