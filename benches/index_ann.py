"""ANN search: Qdrant Edge HNSW against FAISS HNSW, side by side, through turnout's Collection.

N seeded random unit vectors of dimension 512 go into one collection per backend through
`Collection.upsert` (payload store and manifest included). Each backend's `ef` is raised
until recall@10 against exact search (FAISS flat) reaches the target, then single-query
top-10 latency (tenant filter and payload fetch included) is measured at that `ef`.

    .venv/bin/python benches/index_ann.py [--n 1000000] [--queries 200] [--write FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "src"))

DIM = 512
EFS = (16, 32, 64, 128, 256, 512, 1024)


def unit(n: int, seed: int) -> np.ndarray:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - start), DIM), dtype=np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def build(backend: str, root: Path, vectors: Any, batch: int) -> tuple[Any, float]:
    from turnout.core import load_settings
    from turnout.retrieval.index import Item, Provenance, create_collection

    index = {"backend": backend, "path": root / backend, "faiss": {"kind": "hnsw"}}
    settings = load_settings(home=root / "home", index=index)
    started = time.perf_counter()
    coll = create_collection(settings, "ann", DIM)
    for start in range(0, len(vectors), batch):
        stop = min(start + batch, len(vectors))
        items = [
            Item(str(i), "bench", Provenance(f"v{i}", ""), "image") for i in range(start, stop)
        ]
        coll.upsert(items, vectors[start:stop])
    if backend == "edge":
        coll.backend.optimize()  # build the HNSW graph now, not lazily
    else:
        coll.backend.save()
    return coll, time.perf_counter() - started


def set_ef(coll: Any, ef: int) -> None:
    if coll.backend.kind == "edge":
        coll.backend.ef = ef
    else:
        coll.backend.options = coll.backend.options.model_copy(update={"ef_search": ef})
        coll.backend._tune()


def recall(coll: Any, queries: Any, truth: Any, k: int = 10) -> float:
    found = 0
    for q, t in zip(queries, truth, strict=True):
        ids = {int(h.item.id) for h in coll.search(q, tenant="bench", k=k)}
        found += len(ids & set(t[:k].tolist()))
    return found / (k * len(queries))


def latency(coll: Any, queries: Any, k: int = 10) -> tuple[float, float]:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        coll.search(q, tenant="bench", k=k)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def index_bytes(coll: Any, root: Path) -> int:
    from turnout.retrieval.index._backend import directory_bytes

    if coll.backend.kind == "edge":
        return directory_bytes(coll.backend.path)
    return (coll.backend.path / "vectors.faiss").stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--backends", default="edge,faiss")
    parser.add_argument("--write", type=Path, help="append the results to this markdown file")
    args = parser.parse_args()
    import faiss

    vectors = unit(args.n, seed=0)
    queries = unit(args.queries, seed=1)
    exact = faiss.IndexFlatIP(DIM)
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    del exact
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            coll, seconds = build(backend, Path(tmp), vectors, args.batch)
            print(f"{backend}: built {args.n:,} in {seconds:.1f} s", flush=True)
            chosen = None
            for ef in EFS:
                set_ef(coll, ef)
                r = recall(coll, queries, truth)
                print(f"  ef={ef}: recall@10 {r:.3f}", flush=True)
                if r >= args.target:
                    chosen = (ef, r)
                    break
            if chosen is None:
                chosen = (EFS[-1], r)
            p50, p95 = latency(coll, queries)
            size = index_bytes(coll, Path(tmp))
            rows.append((backend, seconds, size / args.n, chosen[0], chosen[1], p50, p95))
            print(f"  p50 {p50:.2f} ms, p95 {p95:.2f} ms, {size / args.n:,.0f} bytes/vector")
            coll.close()
    lines = [
        "",
        f"## Index ANN search: Qdrant Edge HNSW vs FAISS HNSW ({dt.date.today().isoformat()})",
        "",
        f"Command: `.venv/bin/python benches/index_ann.py --n {args.n} --queries {args.queries}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), "
        f"Python {platform.python_version()}, faiss {faiss.__version__}.",
        f"{args.n:,} seeded random unit vectors, dimension {DIM}; {args.queries} random unit "
        "queries; exact top-10 from FAISS flat. Each backend's ef is raised through "
        f"{', '.join(map(str, EFS))} until recall@10 >= {args.target}. Build time is through "
        "`Collection.upsert` (payload store and manifest included) plus the HNSW build; "
        "latency is one query at a time through `Collection.search` (tenant filter and "
        "payload fetch included). Bytes per vector: the index on disk (Qdrant Edge: the "
        "shard's allocated bytes; FAISS: vectors.faiss, without the SQLite payload store).",
        "",
        "| backend | build s | bytes/vector | ef | recall@10 | p50 ms | p95 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = {"edge": "Qdrant Edge HNSW (m 16, ef_construct 128)",
             "faiss": "FAISS HNSW (M 32, efConstruction 200)"}  # fmt: skip
    for backend, seconds, per, ef, r, p50, p95 in rows:
        lines.append(
            f"| {names.get(backend, backend)} | {seconds:,.1f} | {per:,.0f} | {ef} | {r:.3f} "
            f"| {p50:.2f} | {p95:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with args.write.open("a") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
