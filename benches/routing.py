"""Routing cost per request: parse, inspect (images decoded from data: URIs and their
headers read) and plan, without the network. Target: under 1 ms without the classifier.

    .venv/bin/python benches/routing.py [--n 5000] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import io
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import orjson
from PIL import Image

from turnout.core import RouteSettings
from turnout.gateway import Router
from turnout.gateway._intake import inspect_request, parse_request

ROUTE = RouteSettings.model_validate(
    {
        "tiers": [
            {"name": "cheap", "deployments": [{"provider": "p", "model": "gpt-4.1-mini"}]},
            {"name": "strong", "deployments": [{"provider": "p", "model": "gpt-4.1"}]},
        ],
        "rules": [
            {"when": {"json_schema": True}, "start": "strong"},
            {"when": {"min_image_pixels": 4_000_000}, "start": "strong"},
            {"when": {"min_text_chars": 20_000}, "start": "strong"},
        ],
    }
)


def _image_uri(target_bytes: int) -> str:
    """A JPEG of noise whose encoded size is just over `target_bytes`."""
    side = 64
    while True:
        out = io.BytesIO()
        Image.effect_noise((side, side), 60).convert("RGB").save(out, format="JPEG", quality=85)
        if out.tell() >= target_bytes or side > 4096:
            return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()
        side += 16


def _bodies() -> dict[str, bytes]:
    text: dict[str, Any] = {
        "model": "auto",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name the capital of Norway and one fact about it."},
        ],
    }
    image = {
        "model": "auto",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this photo?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": _image_uri(200_000), "detail": "high"},
                    },
                ],
            }
        ],
    }
    return {"text": orjson.dumps(text), "200 KB image": orjson.dumps(image)}


def _measure(body: bytes, n: int) -> list[float]:
    router = Router({"auto": ROUTE})
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        request = parse_request(body, 64 * 1024 * 1024)
        facts = inspect_request(request, ("png", "jpeg", "gif", "webp"))
        router.plan(request, facts)
        samples.append(time.perf_counter() - start)
    return sorted(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    rows = []
    for name, body in _bodies().items():
        samples = _measure(body, args.n)
        p50 = statistics.median(samples) * 1e6
        p99 = samples[int(0.99 * len(samples))] * 1e6
        rows.append(f"| {name} ({len(body) / 1000:,.0f} KB body) | {p50:,.0f} | {p99:,.0f} |")
    report = "\n".join(
        [
            f"### Routing cost per request ({dt.date.today()})",
            "",
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}.",
            f"Command: `.venv/bin/python benches/routing.py --n {args.n}`. Parse the body,"
            " inspect it (validate data: URIs, read image headers), pick the route and"
            " starting tier; no network.",
            "",
            "| request | p50 µs | p99 µs |",
            "| --- | ---: | ---: |",
            *rows,
            "",
            "Target: under 1 ms (1,000 µs) per request without the classifier.",
            "",
        ]
    )
    print(report)
    if args.write:
        with args.write.open("a") as fh:
            fh.write("\n" + report)


if __name__ == "__main__":
    main()
