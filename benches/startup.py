"""Start-up time of the CLI: `turnout --help` and `turnout tokens` must stay under 1 s.

Runs each command N times as a fresh process (what a user waits for), next to the bare
interpreter start on the same machine as the floor, and checks that no heavy module
(torch, transformers, faiss, fastapi) is imported on the way.

    .venv/bin/python benches/startup.py [--runs 20] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "transformers", "faiss", "fastapi", "qdrant_edge", "numpy")
BIN = Path(sys.executable).parent


def _make_image(folder: Path) -> Path:
    from PIL import Image

    path = folder / "photo.jpg"
    Image.new("RGB", (4032, 3024), (90, 120, 150)).save(path, quality=80)
    return path


def _time(cmd: list[str], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return samples


def _heavy_imports(cmd_module: str) -> list[str]:
    code = f"import sys, {cmd_module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--write", type=Path, help="append the results to this markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        image = _make_image(Path(tmp))
        cases = {
            "python -c pass (floor)": [sys.executable, "-c", "pass"],
            "turnout --help": [str(BIN / "turnout"), "--help"],
            "turnout tokens IMG --model gpt-4o": [
                str(BIN / "turnout"),
                "tokens",
                str(image),
                "--model",
                "gpt-4o",
            ],
        }
        results = {name: _time(cmd, args.runs) for name, cmd in cases.items()}
    heavy = _heavy_imports("turnout.cli")

    rows = []
    for name, samples in results.items():
        samples.sort()
        p50 = statistics.median(samples)
        p95 = samples[min(len(samples) - 1, int(0.95 * len(samples)))]
        rows.append(
            f"| `{name}` | {p50 * 1000:.0f} | {p95 * 1000:.0f} | {max(samples) * 1000:.0f} |"
        )
    verdict = all(statistics.median(s) < 1.0 for n, s in results.items() if n.startswith("turnout"))
    report = "\n".join(
        [
            f"### CLI start-up ({dt.date.today()})",
            "",
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, {platform.platform()}.",
            f"Command: `.venv/bin/python benches/startup.py --runs {args.runs}`"
            " (each run a fresh process).",
            "",
            "| command | p50 ms | p95 ms | max ms |",
            "| --- | ---: | ---: | ---: |",
            *rows,
            "",
            f"Heavy modules imported by `import turnout.cli`: {', '.join(heavy) or 'none'}.",
            f"Target (under 1 s at p50): {'met' if verdict else 'NOT met'}.",
            "",
        ]
    )
    print(report)
    if args.write:
        with args.write.open("a") as fh:
            fh.write("\n" + report)


if __name__ == "__main__":
    main()
