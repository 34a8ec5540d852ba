"""ANN search: Qdrant Edge HNSW against FAISS HNSW, side by side, through turnout's Collection.

N seeded random unit vectors of dimension 512 go into one collection per backend through
`Collection.upsert` (payload store and manifest included). Each backend's `ef` is raised
until recall@10 against exact search (FAISS flat) reaches the target, then single-query
top-10 latency (tenant filter and payload fetch included) is measured at that `ef`.

Backends: `edge` and `faiss` (HNSW graphs); `edge-scan:CODES` (Qdrant Edge with no graph,
`index.hnsw.m: 0`, and dense codes CODES, one of turbo2, turbo4, scalar, binary: every
search scans the codes and re-scores the best with the originals; its oversampling is
raised instead of ef); `fastscan` (a reference outside turnout: raw FAISS PQ fast-scan
codes of 2 values a byte in two threaded shards, re-scored exactly; no tenant filter, no
payloads), to show what a scan of compact codes costs on this machine.

    .venv/bin/python benches/index_ann.py [--n 1000000] [--queries 200] \
        [--backends edge,faiss,edge-scan:turbo2,fastscan] [--write FILE]
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
OVERSAMPLING = (2, 5, 10, 20, 40)
FASTSCAN_FACTORS = (5, 10, 20, 30, 50, 100)


def unit(n: int, seed: int) -> np.ndarray:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - start), DIM), dtype=np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


LATENT = 64  # --data latent: the intrinsic dimension


def latent(n: int, seed: int) -> np.ndarray:  # type: ignore[type-arg]
    """Unit vectors near a 64-dimensional subspace of the 512: data with neighbourhoods.

    Each is a seeded random mix of 64 fixed directions plus isotropic noise of a quarter
    of its norm, normalised. Learned embeddings concentrate near low-dimensional structure
    the same way (their intrinsic dimension is a few tens); this is a stand-in, not one.
    """
    basis = np.random.default_rng(12345).standard_normal((LATENT, DIM), dtype=np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        mix = rng.standard_normal((m, LATENT), dtype=np.float32) @ basis / np.sqrt(LATENT)
        block = mix + 0.25 * rng.standard_normal((m, DIM), dtype=np.float32)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def build(backend: str, root: Path, vectors: Any, batch: int) -> tuple[Any, float]:
    from turnout.core import load_settings
    from turnout.retrieval.index import Item, Provenance, create_collection

    kind, _, codes = backend.partition(":")
    index: dict[str, Any] = {"backend": kind.removesuffix("-scan"), "path": root / kind}
    index["faiss"] = {"kind": "hnsw"}
    if kind == "edge-scan":
        index |= {"hnsw": {"m": 0}, "quantization": codes}
    settings = load_settings(home=root / "home", index=index)
    started = time.perf_counter()
    coll = create_collection(settings, "ann", DIM)
    for start in range(0, len(vectors), batch):
        stop = min(start + batch, len(vectors))
        items = [
            Item(str(i), "bench", Provenance(f"v{i}", ""), "image") for i in range(start, stop)
        ]
        coll.upsert(items, vectors[start:stop])
    if kind.startswith("edge"):
        coll.backend.optimize()  # build the HNSW graph (or the codes) now, not lazily
    else:
        coll.backend.save()
    return coll, time.perf_counter() - started


def set_ef(coll: Any, ef: int) -> None:
    if coll.spec.quantization != "none":  # a scan of codes: widen the re-scored candidates
        q = coll.backend.q
        coll.backend.rescore = q.QuantizationSearchParams(rescore=True, oversampling=float(ef))
    elif coll.backend.kind == "edge":
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


class FastScan:
    """Raw FAISS PQ fast-scan codes in two threaded shards, top candidates re-scored exactly."""

    def __init__(self, vectors: Any, shards: int = 2) -> None:
        import faiss

        self.vectors = vectors
        self.factor = FASTSCAN_FACTORS[0]
        self.index = faiss.IndexShards(DIM, True, True)
        self.parts = []
        step = -(-len(vectors) // shards)
        for start in range(0, len(vectors), step):
            part = faiss.IndexPQFastScan(DIM, DIM // 2, 4, faiss.METRIC_INNER_PRODUCT)
            part.train(vectors[: min(200_000, len(vectors))])
            part.add(vectors[start : start + step])
            self.parts.append(part)  # IndexShards does not own its shards
            self.index.add_shard(part)

    def search(self, query: Any, k: int) -> list[int]:
        _, found = self.index.search(query[None, :], k * self.factor)
        candidates = found[0][found[0] >= 0]
        scores = self.vectors[candidates] @ query
        return [int(i) for i in candidates[np.argsort(-scores)[:k]]]


def fastscan_row(vectors: Any, queries: Any, truth: Any, target: float) -> tuple[Any, ...]:
    started = time.perf_counter()
    index = FastScan(vectors)
    seconds = time.perf_counter() - started
    print(f"fastscan: built {len(vectors):,} in {seconds:.1f} s", flush=True)
    r = 0.0
    for factor in FASTSCAN_FACTORS:
        index.factor = factor
        found = sum(
            len(set(index.search(q, 10)) & set(t.tolist()))
            for q, t in zip(queries, truth, strict=True)
        )
        r = found / (10 * len(queries))
        print(f"  candidates x{factor}: recall@10 {r:.3f}", flush=True)
        if r >= target:
            break
    times = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q, 10)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1000
    p50, p95 = float(np.percentile(ms, 50)), float(np.percentile(ms, 95))
    print(f"  p50 {p50:.2f} ms, p95 {p95:.2f} ms", flush=True)
    # Codes only: DIM / 2 bytes a vector; the re-scoring reads the float originals (+2,048).
    return ("fastscan", seconds, DIM / 2 + DIM * 4, factor, r, p50, p95)


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
    parser.add_argument(
        "--data",
        choices=("random", "latent"),
        default="random",
        help="random: uniform unit vectors (the issue's); latent: near a 64-d subspace",
    )
    parser.add_argument("--write", type=Path, help="append the results to this markdown file")
    args = parser.parse_args()
    import faiss

    make = latent if args.data == "latent" else unit
    vectors = make(args.n, seed=0)
    queries = make(args.queries, seed=1)
    exact = faiss.IndexFlatIP(DIM)
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    del exact
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            if backend == "fastscan":
                rows.append(fastscan_row(vectors, queries, truth, args.target))
                continue
            coll, seconds = build(backend, Path(tmp), vectors, args.batch)
            print(f"{backend}: built {args.n:,} in {seconds:.1f} s", flush=True)
            chosen = None
            widths = OVERSAMPLING if coll.spec.quantization != "none" else EFS
            for ef in widths:
                set_ef(coll, ef)
                r = recall(coll, queries, truth)
                print(f"  ef/oversampling={ef}: recall@10 {r:.3f}", flush=True)
                if r >= args.target:
                    chosen = (ef, r)
                    break
            if chosen is None:
                chosen = (widths[-1], r)
            p50, p95 = latency(coll, queries)
            size = index_bytes(coll, Path(tmp))
            rows.append((backend, seconds, size / args.n, chosen[0], chosen[1], p50, p95))
            print(f"  p50 {p50:.2f} ms, p95 {p95:.2f} ms, {size / args.n:,.0f} bytes/vector")
            coll.close()
    lines = [
        "",
        f"## Index ANN search: Qdrant Edge HNSW vs FAISS HNSW ({dt.date.today().isoformat()})",
        "",
        f"Command: `.venv/bin/python benches/index_ann.py --n {args.n} --queries {args.queries}"
        f" --backends {args.backends} --data {args.data}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared), "
        f"Python {platform.python_version()}, faiss {faiss.__version__}.",
        f"{args.n:,} seeded {args.data} unit vectors, dimension {DIM}; {args.queries} "
        "queries made the same way; exact top-10 from FAISS flat. Each backend's ef is "
        "raised through "
        f"{', '.join(map(str, EFS))} (a scan's oversampling through "
        f"{', '.join(map(str, OVERSAMPLING))}; the reference's candidates per hit through "
        f"{', '.join(map(str, FASTSCAN_FACTORS))}) until recall@10 >= {args.target}. "
        "Build time is through "
        "`Collection.upsert` (payload store and manifest included) plus the HNSW build; "
        "latency is one query at a time through `Collection.search` (tenant filter and "
        "payload fetch included). Bytes per vector: the index on disk (Qdrant Edge: the "
        "shard's allocated bytes; FAISS: vectors.faiss, without the SQLite payload store).",
        "",
        "| backend | build s | bytes/vector | ef (oversampling, candidates x) | recall@10 "
        "| p50 ms | p95 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = {"edge": "Qdrant Edge HNSW (m 16, ef_construct 128)",
             "faiss": "FAISS HNSW (M 32, efConstruction 200)",
             "fastscan": "raw FAISS PQ fast-scan + exact re-score (reference)"}  # fmt: skip
    for codes in ("turbo2", "turbo4", "scalar", "binary"):
        names[f"edge-scan:{codes}"] = f"Qdrant Edge, no graph, {codes} codes re-scored"
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
