"""Visual search: end-to-end `/v1/search` latency over 100,000 indexed items.

The index holds synthetic unit vectors (seeded) in a Qdrant Edge collection (the default
backend); the query goes through a real CLIP text tower with random weights, built here
in the shape of a small and of a ViT-B/32 CLIP (the text tower is what a text query runs).
`turnout serve` runs in its own process; the clients (1, then 16 concurrent) are httpx in
this one. Every query text is distinct, so none is answered from the embedding cache; a
repeated query (the cache) is timed separately.

    .venv/bin/python benches/visual_search.py [--items 100000] [--queries 300]
        [--shapes tiny vit-b32] [--write docs/benchmarks.md]

Reported per model and concurrency: client latency p50/p95, and the server's split of it
into embed (query embedding, batching included), search (the index) and overhead (the
rest: HTTP, auth, rate limits, JSON, the client).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from encoders import SHAPES, build_model, captions, cpu_name

# A small CLIP: 6-layer 256-wide text tower (about a third of ViT-B/32's text tower).
SHAPES["small"] = (
    {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
     "num_attention_heads": 2, "image_size": 64, "patch_size": 16},
    {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 6,
     "num_attention_heads": 4}, 512, 64,
)  # fmt: skip
TENANT = "anonymous"  # keys are off in this benchmark: every request is the anonymous tenant


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def build_index(home: Path, model: Path, items: int, batch: int = 5000) -> float:
    """The collection `catalog`: `items` synthetic unit vectors, recorded with the encoder."""
    from turnout.core import load_settings
    from turnout.retrieval import EncoderOptions, load_encoder
    from turnout.retrieval.index import Item, Provenance, create_collection

    settings = load_settings(home=home)
    encoder = load_encoder(str(model), EncoderOptions(workers=0))
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    with create_collection(settings, "catalog", encoder.dim, encoder=encoder) as collection:
        for start in range(0, items, batch):
            n = min(batch, items - start)
            vectors = rng.normal(size=(n, encoder.dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            rows = [
                Item(
                    id=f"sku-{i}",
                    tenant=TENANT,
                    source=Provenance(f"/catalog/{i}.jpg", f"h{i}"),
                    modality="image",
                    metadata={"shelf": i % 50},
                )
                for i in range(start, start + n)
            ]
            collection.upsert(rows, vectors)
        collection.optimize()  # the HNSW graph, as `index_sources` builds it after a run
        assert collection.count(TENANT) == items
    return time.perf_counter() - started


class Gateway:
    def __init__(self, home: Path, model: Path, port: int) -> None:
        self.port = port
        config = {
            "home": str(home),
            "governance": {"require_keys": False},
            "telemetry": {"record_requests": False},
            "search": {"encoder": str(model)},
            "providers": {"none": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}},
            "routes": {"r": {"tiers": [{"name": "t", "deployments": [
                {"provider": "none", "model": "gpt-4.1-mini"}]}]}},
        }  # fmt: skip
        self.config = home / "gateway.yaml"
        self.config.write_text(yaml.safe_dump(config))
        self.log = home / "gateway.log"

    def __enter__(self) -> str:
        turnout = Path(sys.executable).with_name("turnout")
        self.proc = subprocess.Popen(
            [str(turnout), "serve", "-c", str(self.config), "--port", str(self.port)],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        url = f"http://127.0.0.1:{self.port}"
        for _ in range(600):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"gateway did not start; see {self.log}")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


async def run_clients(
    url: str, texts: list[str], clients: int
) -> tuple[list[float], list[dict[str, float]]]:
    latencies: list[float] = []
    splits: list[dict[str, float]] = []
    queue = list(texts)

    async def client(http: httpx.AsyncClient) -> None:
        while queue:
            text = queue.pop()
            started = time.perf_counter()
            reply = await http.post(
                "/v1/search", json={"collection": "catalog", "query": text, "k": 10}
            )
            latencies.append((time.perf_counter() - started) * 1000)
            reply.raise_for_status()
            body = reply.json()
            assert len(body["data"]) == 10
            splits.append(body["timings_ms"])

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return latencies, splits


def summarise(latencies: list[float], splits: list[dict[str, float]]) -> dict[str, float]:
    embed = [s["embed"] for s in splits]
    search = [s["search"] for s in splits]
    overhead = [lat - s["embed"] - s["search"] for lat, s in zip(latencies, splits, strict=True)]
    return {
        "p50": statistics.median(latencies),
        "p95": percentile(latencies, 95),
        "embed_p50": statistics.median(embed),
        "embed_p95": percentile(embed, 95),
        "search_p50": statistics.median(search),
        "search_p95": percentile(search, 95),
        "overhead_p50": statistics.median(overhead),
        "n": len(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300, help="per model and concurrency")
    parser.add_argument("--shapes", nargs="+", default=["tiny", "small", "vit-b32"])
    parser.add_argument("--port", type=int, default=18431)
    parser.add_argument("--write", type=Path, default=None, help="append to this markdown")
    args = parser.parse_args()

    from turnout.providers.standin import free_port

    rng = random.Random(1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="turnout-visual-search-") as tmp:
        for shape in args.shapes:
            texts = captions(args.queries * 3, seed=7)
            model = build_model(Path(tmp) / f"model-{shape}", shape, texts)
            home = Path(tmp) / f"home-{shape}"
            built = build_index(home, model, args.items)
            print(f"{shape}: indexed {args.items:,} vectors in {built:.1f} s", flush=True)
            with Gateway(home, model, free_port()) as url:
                # Warm up: load the encoder, open the collection, fill the caches of the OS.
                asyncio.run(run_clients(url, [f"warm {i}" for i in range(20)], 1))
                result: dict[str, Any] = {"shape": shape}
                for clients in (1, 16):
                    batch = rng.sample(texts, args.queries)
                    # Distinct per run: nothing comes from the embedding cache.
                    batch = [f"{t} {clients}" for t in batch]
                    result[clients] = summarise(*asyncio.run(run_clients(url, batch, clients)))
                cached = asyncio.run(run_clients(url, [batch[0]] * 100, 1))
                result["cached"] = summarise(*cached)
            rows.append(result)
            print(result, flush=True)

    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## Visual search: /v1/search over {args.items:,} items ({when})",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
        "Command: `.venv/bin/python benches/visual_search.py "
        f"--items {args.items} --queries {args.queries} --shapes {' '.join(args.shapes)}`.",
        "Qdrant Edge (default backend, HNSW m=16, ef=128) holding seeded random unit vectors "
        "(the encoder's dimension: 64 for tiny, 512 otherwise); the query is embedded by "
        "a random-weight CLIP text tower of the "
        "named shape (tiny: 2 layers x 64; small: 6 x 256; vit-b32: 12 x 512, 63M parameters), "
        "`turnout serve` in its own process, httpx clients on loopback, k=10, every query "
        "text distinct (no cache hits). Milliseconds; overhead = client latency - embed - "
        "search (HTTP, auth, limits, JSON, the client itself).",
        "",
        "| text tower | clients | p50 | p95 | embed p50 / p95 | search p50 / p95 | "
        "overhead p50 | repeated query (cached) p50 / p95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cached = row["cached"]
        for clients in (1, 16):
            r = row[clients]
            lines.append(
                f"| {row['shape']} | {clients} | {r['p50']:.1f} | {r['p95']:.1f} | "
                f"{r['embed_p50']:.1f} / {r['embed_p95']:.1f} | "
                f"{r['search_p50']:.1f} / {r['search_p95']:.1f} | {r['overhead_p50']:.1f} | "
                + (f"{cached['p50']:.1f} / {cached['p95']:.1f} |" if clients == 1 else "- |")
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with args.write.open("a") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
