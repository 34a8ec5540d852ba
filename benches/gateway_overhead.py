"""Gateway overhead: turnout against LiteLLM's proxy, same stand-in upstream, same run.

Starts, each in its own process on loopback: the stand-in upstream (answers at once),
`turnout serve` (one `openai` provider pointing at the stand-in, route `bench` with one
tier) and, when its binary is given, LiteLLM's proxy (one worker, no database, the same
model pointing at the same stand-in). Then, for a short text request and for a request
carrying one ~200 KB base64 JPEG:

1. sustained throughput, closed loop: `wrk -t2 -c50` and `-c100` for N seconds each against
   the stand-in directly, turnout (by route and by concrete model) and LiteLLM; also the CPU
   time each server process used per request;
2. added latency, open loop: requests sent at a constant rate every target sustains (a
   fraction of the slowest target's throughput), each on its own keep-alive connection, so
   queueing does not pose as overhead; p50/p95/p99 per target, minus the direct path's. The
   targets take turns in short blocks (--rounds of --open-seconds each, the order reversed
   every other round), so a shared machine's drifting load falls on all of them alike; the
   percentiles pool every round, and each round's p50 is shown too (its spread is the
   noise). "telemetry on vs off" compares the same route with and without telemetry, in
   pooled p50 and round by round;
3. latency at 100 concurrent connections, closed loop: the `wrk -c100` percentiles, minus
   the direct path's (this one includes queueing behind the other 99 requests).

    benches/setup_litellm.sh                        # LiteLLM in its own venv, once
    .venv/bin/python benches/gateway_overhead.py \\
        --litellm .bench-venv/litellm/bin/litellm [--seconds 10] [--rounds 6] [--pin]

Needs `wrk` on PATH (Debian: apt-get install wrk). Every server is killed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import functools
import io
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
LUA = HERE / "wrk_post.lua"
LITELLM_CONFIG = HERE / "litellm_config.yaml"
DEFAULT_LITELLM = ROOT / ".bench-venv" / "litellm" / "bin" / "litellm"
MODEL = "gpt-4o-mini"
PATH = "/v1/chat/completions"
CLK_TCK = os.sysconf("SC_CLK_TCK")
R = TypeVar("R", "WrkResult", "OpenLoopResult")


# ---------------------------------------------------------------- workloads


def make_jpeg(target_bytes: int = 150_000) -> bytes:
    """A real 800x600 JPEG (gradient plus noise) whose size is near `target_bytes`, so its
    base64 is near 200 KB."""
    from PIL import Image

    w, h = 800, 600
    gradient = Image.linear_gradient("L").resize((w, h))
    noise = Image.effect_noise((w, h), 48)
    image = Image.merge("RGB", (gradient, noise, gradient.transpose(Image.Transpose.ROTATE_180)))
    best = b""
    lo, hi = 5, 95
    while lo <= hi:  # the encoded size grows with quality: binary search the closest
        quality = (lo + hi) // 2
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        data = buffer.getvalue()
        if not best or abs(len(data) - target_bytes) < abs(len(best) - target_bytes):
            best = data
        if len(data) < target_bytes:
            lo = quality + 1
        else:
            hi = quality - 1
    return best


def text_body(model: str) -> bytes:
    return orjson.dumps(
        {
            "model": model,
            "messages": [
                {"role": "system", "content": "You are a terse assistant."},
                {"role": "user", "content": "What is the capital of France? One word."},
            ],
            "max_tokens": 16,
        }
    )


def image_body(model: str, jpeg: bytes) -> bytes:
    uri = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    return orjson.dumps(
        {
            "model": model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in this picture? One sentence."},
                        {"type": "image_url", "image_url": {"url": uri, "detail": "auto"}},
                    ],
                }
            ],
            "max_tokens": 32,
        }
    )


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(entry))
    return kids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its live descendants."""
    total = 0.0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
        stack.extend(_children(p))
    return total


def _machine_busy_s() -> float:
    """CPU-seconds all cores have spent busy since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:8]]
    return (sum(values) - values[3] - values[4]) / CLK_TCK  # minus idle and iowait


class ForeignLoad:
    """How much CPU processes other than this bench's used meanwhile, as a fraction of all
    cores: the machine is shared, so every measurement says how quiet it was."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.start = self._sample()
        self.wall = time.monotonic()

    def _sample(self) -> tuple[float, float]:
        ours = sum(cpu_seconds(p) for p in self.pids)
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):  # this script, wrk
            usage = resource.getrusage(who)
            ours += usage.ru_utime + usage.ru_stime
        return _machine_busy_s(), ours

    def fraction(self) -> float:
        busy, ours = self._sample()
        wall = time.monotonic() - self.wall
        foreign = (busy - self.start[0]) - (ours - self.start[1])
        return max(0.0, foreign / (wall * (os.cpu_count() or 1)))


def wait_quiet(limit_s: float, threshold: float = 0.15) -> float:
    """Wait (up to `limit_s`) for a 2 s window with under `threshold` of the CPUs busy."""
    deadline = time.monotonic() + limit_s
    while True:
        before, t0 = _machine_busy_s(), time.monotonic()
        time.sleep(2)
        busy = (_machine_busy_s() - before) / ((time.monotonic() - t0) * (os.cpu_count() or 1))
        if busy < threshold or time.monotonic() > deadline:
            return busy
        print(f"  machine {busy * 100:.0f}% busy with other work; waiting", flush=True)


@dataclass
class Server:
    name: str
    cmd: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    log: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = open(self.log, "wb") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as one at the end
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def wait_ready(server: Server, body: bytes, timeout: float = 120.0) -> None:
    """Until a real chat request through `server` answers 200 (or it dies, or time's up)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        assert server.proc is not None
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.proc.returncode}; see {server.log}"
            )
        try:
            status, answer = asyncio.run(_one_request(server.port, body))
            if status == 200 and b'"choices"' in answer:
                return
            last = f"HTTP {status}: {answer[:300]!r}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise RuntimeError(f"{server.name} not ready after {timeout:.0f} s: {last}; see {server.log}")


# ---------------------------------------------------------------- raw HTTP/1.1 client


def http_request(port: int, body: bytes) -> bytes:
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"Authorization: Bearer {os.environ.get('BENCH_KEY', 'sk-bench')}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server closes) of one response: content-length or chunked."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length: int | None = None
    chunked = close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            close = value == b"close"
    if chunked:
        parts = []
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                break
            parts.append((await reader.readexactly(size + 2))[:-2])
        return status, b"".join(parts), close
    if length is not None:
        return status, await reader.readexactly(length), close
    return status, await reader.read(), True


async def _one_request(port: int, body: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(http_request(port, body))
        status, answer, _ = await asyncio.wait_for(_read_response(reader), 30)
        return status, answer
    finally:
        writer.close()


@dataclass
class OpenLoopResult:
    rate: float
    sent: int
    samples: list[float]
    errors: int
    late_sends: int
    connections: int
    foreign: float = 0.0  # CPU share other processes on the machine used meanwhile

    @classmethod
    def pooled(cls, rounds: list[OpenLoopResult]) -> OpenLoopResult:
        """One result from several rounds at the same rate: every sample, every error."""
        return cls(
            rounds[0].rate,
            sum(r.sent for r in rounds),
            [x for r in rounds for x in r.samples],
            sum(r.errors for r in rounds),
            sum(r.late_sends for r in rounds),
            max(r.connections for r in rounds),
            statistics.fmean(r.foreign for r in rounds),
        )

    def pct(self, q: float) -> float:
        ordered = sorted(self.samples)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def open_loop(
    port: int, body: bytes, rate: float, seconds: float, warmup: float, timeout: float = 30.0
) -> OpenLoopResult:
    """Send at a constant `rate` regardless of answers (open loop); each request takes an idle
    keep-alive connection or opens one, so no request waits for another to finish. Latency is
    from the request's start to its last response byte; the first `warmup` s are not kept."""
    request = http_request(port, body)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for _ in range(max(8, int(rate * 0.02) + 4)):
        idle.append(await asyncio.open_connection("127.0.0.1", port))
    opened = len(idle)
    samples: list[float] = []
    errors = late = 0
    keep_from = int(rate * warmup)
    total = keep_from + int(rate * seconds)

    async def one(index: int) -> None:
        nonlocal errors, opened
        start = time.perf_counter()
        if idle:
            reader, writer = idle.pop()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            opened += 1
        try:
            writer.write(request)
            status, _, close = await asyncio.wait_for(_read_response(reader), timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            errors += index >= keep_from
            writer.close()
            return
        elapsed = time.perf_counter() - start
        if status != 200:
            errors += index >= keep_from
        elif index >= keep_from:
            samples.append(elapsed)
        if close:
            writer.close()
        else:
            idle.append((reader, writer))

    tasks = []
    t0 = time.perf_counter() + 0.05
    for i in range(total):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.002:
            late += 1  # the generator itself fell behind its schedule by over 2 ms
        tasks.append(asyncio.create_task(one(i)))
    _, pending = await asyncio.wait(tasks, timeout=timeout + 5)
    for task in pending:
        task.cancel()
    errors += len(pending)
    for _, writer in idle:
        writer.close()
    return OpenLoopResult(rate, total - keep_from, samples, errors, late, opened)


def run_async(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


# ---------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    connections: int
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_ms_per_request: float  # of the target server's process tree
    foreign: float = 0.0  # CPU share other processes on the machine used meanwhile

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk(
    wrk: str, port: int, body_file: Path, connections: int, seconds: int, threads: int
) -> dict[str, int]:
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}{PATH}",
        "--",
        str(body_file),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no RESULT line:\n{out.stdout}\n{out.stderr}")
    return {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}


def measure_wrk(
    wrk: str,
    server: Server,
    body_file: Path,
    connections: int,
    seconds: int,
    threads: int,
    pids: list[int],
) -> WrkResult:
    meter = ForeignLoad(pids)
    cpu0 = cpu_seconds(server.pid)
    raw = run_wrk(wrk, server.port, body_file, connections, seconds, threads)
    cpu = cpu_seconds(server.pid) - cpu0
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return WrkResult(
        connections,
        raw["requests"],
        raw["duration_us"] / 1e6,
        errors,
        raw["p50_us"] / 1000,
        raw["p95_us"] / 1000,
        raw["p99_us"] / 1000,
        cpu * 1000 / max(1, raw["requests"]),
        meter.fraction(),
    )


# ---------------------------------------------------------------- the run


@dataclass
class Target:
    name: str  # as shown in the tables
    server: Server
    model: str


TELEMETRY_ON = """log_level: info
telemetry:
  metrics: true
  record_requests: true
  otlp_endpoint: http://127.0.0.1:{sink}/v1/traces
"""
TELEMETRY_OFF = """log_level: warning
telemetry:
  metrics: false
  record_requests: false
"""

# A stand-in OTLP collector: accepts every export, so traces cost what they cost in life.
SINK = """
import sys
from aiohttp import web

async def accept(request):
    await request.read()
    return web.Response(status=200, content_type="application/x-protobuf")

app = web.Application(client_max_size=64 * 1024 * 1024)
app.router.add_post("/v1/traces", accept)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def turnout_yaml(
    folder: Path, port: int, upstream: int, telemetry: str = "", name: str = "turnout-bench"
) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        f"""# generated by benches/gateway_overhead.py
home: {folder / "home"}
{telemetry}
gateway:
  host: 127.0.0.1
  port: {port}
providers:
  standin:
    kind: openai
    base_url: http://127.0.0.1:{upstream}/v1
    api_key: sk-bench
routes:
  bench:
    tiers:
      - name: only
        deployments: [{{provider: standin, model: {MODEL}}}]
"""
    )
    return path


def issue_key(home: Path) -> str:
    """A tenant (no budget, so nothing refuses) and its key, as a user would make them:
    every request then pays for authentication, reservation and settlement."""
    from turnout.gateway.governance import Database, Policy, TenantDirectory

    db = Database.open(f"sqlite:///{home / 'ledger.db'}")
    directory = TenantDirectory(db)
    directory.create_tenant("bench", None, Policy())
    key, _ = directory.create_key("bench", "gateway_overhead")
    db.close()
    return key


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listening on {port}")


def versions(litellm: Path | None) -> dict[str, str]:
    from importlib.metadata import version

    found = {
        "python": platform.python_version(),
        "turnout": version("turnout"),
        "uvicorn": version("uvicorn"),
        "fastapi": version("fastapi"),
        "httpx": version("httpx"),
    }
    with contextlib.suppress(Exception):
        found["wrk"] = (
            subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
            .stdout.split("[")[0]
            .strip()
        )
    if litellm is not None:
        python = litellm.parent / "python"
        code = "from importlib.metadata import version as v; print(v('litellm'))"
        with contextlib.suppress(Exception):
            found["litellm"] = subprocess.run(
                [str(python), "-c", code], capture_output=True, text=True, check=True
            ).stdout.strip()
    return found


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}" if value == value else "n/a"


@dataclass
class WorkloadResult:
    name: str
    body_bytes: int
    wrk: dict[str, dict[int, WrkResult]] = field(default_factory=dict)
    rate: float = 0.0
    open: dict[str, OpenLoopResult] = field(default_factory=dict)  # all rounds pooled
    rounds: dict[str, list[OpenLoopResult]] = field(default_factory=dict)


def quietly(run: Callable[[], R], args: argparse.Namespace) -> R:
    """`run()` a measurement when the machine is quiet; while other processes took more
    than --max-other of the CPUs during it, wait and measure again (--retries times), and
    keep the quietest."""
    best: R | None = None
    for attempt in range(args.retries + 1):
        if args.wait_quiet:
            wait_quiet(args.wait_quiet)
        result = run()
        if best is None or result.foreign < best.foreign:
            best = result
        if result.foreign <= args.max_other:
            break
        if attempt < args.retries:
            print(f"    other load {result.foreign * 100:.0f}%: measuring again", flush=True)
    assert best is not None
    return best


def bench_workload(
    name: str,
    targets: list[Target],
    bodies: dict[str, Path],
    args: argparse.Namespace,
) -> WorkloadResult:
    result = WorkloadResult(name, bodies[targets[0].name].stat().st_size)
    for target in targets:
        body = bodies[target.name]
        print(f"  [{name}] {target.name}: warm-up, then wrk -c{args.connections}", flush=True)
        measure_wrk(args.wrk, target.server, body, args.connections[0], 2, args.threads, [])
        result.wrk[target.name] = {}
        for c in args.connections:
            r: WrkResult = quietly(
                functools.partial(
                    measure_wrk,
                    args.wrk,
                    target.server,
                    body,
                    c,
                    args.seconds,
                    args.threads,
                    args.pids,
                ),
                args,
            )
            result.wrk[target.name][c] = r
            print(
                f"    c={c}: {r.rps:,.0f} req/s, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, "
                f"errors {r.errors}, server CPU {r.cpu_ms_per_request:.2f} ms/req, "
                f"other load {r.foreign * 100:.0f}%",
                flush=True,
            )
    slowest = min(max(r.rps for r in by_c.values()) for by_c in result.wrk.values())
    result.rate = args.rate.get(name) or max(5.0, min(200.0, round(slowest * args.load / 5) * 5))
    print(
        f"  [{name}] open loop at {result.rate:g} req/s: {args.rounds} rounds of "
        f"{args.open_seconds:g} s per target, the order reversed every other round",
        flush=True,
    )

    def measure(t: Target) -> OpenLoopResult:
        meter = ForeignLoad(args.pids)
        o: OpenLoopResult = run_async(
            open_loop(
                t.server.port,
                bodies[t.name].read_bytes(),
                result.rate,
                args.open_seconds,
                args.open_warmup,
            )
        )
        o.foreign = meter.fraction()
        return o

    result.rounds = {t.name: [] for t in targets}
    for turn in range(args.rounds):
        for target in targets if turn % 2 == 0 else targets[::-1]:
            block: OpenLoopResult = quietly(functools.partial(measure, target), args)
            result.rounds[target.name].append(block)
        print(
            f"    round {turn + 1}: "
            + "; ".join(
                f"{n} p50 {rs[-1].pct(50) * 1000:.2f} ms (other load {rs[-1].foreign * 100:.0f}%)"
                for n, rs in result.rounds.items()
            ),
            flush=True,
        )
    for target in targets:
        o = result.open[target.name] = OpenLoopResult.pooled(result.rounds[target.name])
        print(
            f"  [{name}] {target.name}: p50 {o.pct(50) * 1000:.2f} ms, "
            f"p95 {o.pct(95) * 1000:.2f} ms, p99 {o.pct(99) * 1000:.2f} ms, "
            f"errors {o.errors}, late sends {o.late_sends}",
            flush=True,
        )
    return result


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def telemetry_cost(w: WorkloadResult, on: str, off: str, direct: str) -> tuple[float, list[float]]:
    """How much more added p50 latency `on` has than `off`, as a fraction: from the pooled
    rounds, and round by round (each round's three blocks ran back to back)."""
    d, a, b = w.open[direct].pct(50), w.open[on].pct(50), w.open[off].pct(50)
    per_round = [
        (x.pct(50) - z.pct(50)) / (y.pct(50) - z.pct(50)) - 1
        for x, y, z in zip(w.rounds[on], w.rounds[off], w.rounds[direct], strict=True)
    ]
    return (a - d) / (b - d) - 1, per_round


def report(
    results: list[WorkloadResult],
    peer: str | None,
    direct: str,
    telemetry: tuple[str, str] | None = None,
) -> str:
    """Markdown tables. "other load": CPU share of both cores that processes outside this
    bench used during that measurement (0% = the machine was otherwise quiet)."""
    out: list[str] = []
    for w in results:
        out.append(f"\n#### {w.name} ({w.body_bytes:,} byte request body)\n")
        out.append("Sustained throughput, closed loop (wrk, 2 threads):\n")
        cs = sorted(next(iter(w.wrk.values())))
        head = " | ".join(f"req/s @{c}" for c in cs)
        out.append(
            f"| target | {head} | errors | best req/s | x LiteLLM | server CPU ms/req "
            "| other load |"
        )
        out.append("| --- |" + " ---: |" * (len(cs) + 5))
        peer_best = max(r.rps for r in w.wrk[peer].values()) if peer in w.wrk else None
        for name, by_c in w.wrk.items():
            clean = [r.rps for r in by_c.values() if r.errors == 0]
            best = max(clean) if clean else float("nan")
            ratio = fmt(best / peer_best, 1) if peer_best else "n/a"
            cpu = statistics.fmean(r.cpu_ms_per_request for r in by_c.values())
            cells = " | ".join(fmt(by_c[c].rps, 0) for c in cs)
            errs = sum(r.errors for r in by_c.values())
            other = _pct(max(r.foreign for r in by_c.values()))
            out.append(
                f"| {name} | {cells} | {errs} | {fmt(best, 0)} | {ratio} | {cpu:.2f} | {other} |"
            )
        d = w.open[direct]
        rounds = len(w.rounds[direct])
        out.append(
            f"\nAdded latency, open loop at {w.rate:g} req/s, {d.sent} requests per target in "
            f"{rounds} rounds, targets taking turns (ms; added = target minus direct at the "
            "same percentile, all rounds pooled; p50 per round: lowest to highest):\n"
        )
        out.append(
            "| target | p50 | p95 | p99 | added p50 | added p95 | added p99 | p50 per round "
            "| errors | other load |"
        )
        out.append("| --- |" + " ---: |" * 9)
        base = [d.pct(q) * 1000 for q in (50, 95, 99)]
        for name, o in w.open.items():
            vals = [o.pct(q) * 1000 for q in (50, 95, 99)]
            added = (
                ["—"] * 3
                if name == direct
                else [fmt(v - b, 2) for v, b in zip(vals, base, strict=True)]
            )
            each = sorted(r.pct(50) * 1000 for r in w.rounds[name])
            spread = f"{fmt(each[0], 2)} to {fmt(each[-1], 2)}"
            out.append(
                f"| {name} | {' | '.join(fmt(v, 2) for v in vals)} | {' | '.join(added)} "
                f"| {spread} | {o.errors} | {_pct(o.foreign)} |"
            )
        if telemetry is not None:
            on, off = telemetry
            pooled, per_round = telemetry_cost(w, on, off, direct)
            ordered = sorted(per_round)
            out.append(
                f"\nTelemetry on vs off ({on}, against {off}): added p50 "
                f"{fmt((w.open[on].pct(50) - d.pct(50)) * 1000, 2)} against "
                f"{fmt((w.open[off].pct(50) - d.pct(50)) * 1000, 2)} ms, "
                f"**{pooled * 100:+.1f}%** pooled; round by round: median "
                f"{statistics.median(per_round) * 100:+.1f}%, lowest {ordered[0] * 100:+.1f}%, "
                f"highest {ordered[-1] * 100:+.1f}%."
            )
        c = cs[-1]
        dw = w.wrk[direct][c]
        out.append(
            f"\nLatency at {c} concurrent connections, closed loop (the wrk -c{c} run above; "
            "includes queueing; ms):\n"
        )
        out.append("| target | req/s | p50 | p95 | p99 | added p50 | added p95 | added p99 |")
        out.append("| --- |" + " ---: |" * 7)
        wbase = [dw.p50_ms, dw.p95_ms, dw.p99_ms]
        for name, by_c in w.wrk.items():
            r = by_c[c]
            vals = [r.p50_ms, r.p95_ms, r.p99_ms]
            added = (
                ["—"] * 3
                if name == direct
                else [fmt(v - b, 1) for v, b in zip(vals, wbase, strict=True)]
            )
            out.append(
                f"| {name} | {fmt(r.rps, 0)} | {' | '.join(fmt(v, 1) for v in vals)} "
                f"| {' | '.join(added)} |"
            )
    return "\n".join(out)


@contextlib.contextmanager
def servers(items: list[Server]) -> Iterator[list[Server]]:
    try:
        for s in items:
            s.start()
        yield items
    finally:
        for s in reversed(items):
            s.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--litellm", type=Path, default=None, help="LiteLLM proxy binary")
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run")
    parser.add_argument(
        "--connections", type=lambda s: [int(x) for x in s.split(",")], default=[50, 100]
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--open-seconds", type=float, default=5.0, help="each target's open-loop block"
    )
    parser.add_argument(
        "--open-warmup", type=float, default=1.0, help="not kept, before each block"
    )
    parser.add_argument(
        "--rounds", type=int, default=6, help="open-loop rounds; each target one block each"
    )
    parser.add_argument(
        "--load",
        type=float,
        default=0.25,
        help="open-loop rate as a fraction of the slowest target's best throughput",
    )
    parser.add_argument("--rate-text", type=float, default=None, help="fix the text rate")
    parser.add_argument("--rate-image", type=float, default=None, help="fix the image rate")
    parser.add_argument("--workloads", default="text,image")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin each gateway to CPU 0; stand-in and load generators to CPU 1",
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each measurement, wait up to S seconds for the machine to be under "
        "15%% busy (it is shared)",
    )
    parser.add_argument(
        "--max-other",
        type=float,
        default=0.15,
        help="repeat a measurement during which other processes used more than this share "
        "of the CPUs",
    )
    parser.add_argument("--retries", type=int, default=2, help="repeats per measurement")
    args = parser.parse_args()
    # SIGTERM (and SIGINT, which a background job ignores) stops the servers on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.wrk = shutil.which("wrk")
    if args.wrk is None:
        sys.exit("wrk not found on PATH; on Debian: apt-get install wrk")
    args.rate = {"text": args.rate_text, "image": args.rate_image}
    litellm = args.litellm or (DEFAULT_LITELLM if DEFAULT_LITELLM.exists() else None)
    if litellm is not None and not litellm.exists():
        print(f"LiteLLM binary {litellm} not found: the LiteLLM peer is SKIPPED.")
        litellm = None
    elif litellm is None:
        print(
            "No --litellm given and no .bench-venv/litellm: the LiteLLM peer is SKIPPED "
            "(create it with benches/setup_litellm.sh)."
        )

    gateway_cpu: list[str] = []
    if args.pin:
        os.sched_setaffinity(0, {1})  # this script (open-loop client), wrk and the stand-in
        gateway_cpu = ["taskset", "-c", "0"]

    jpeg = make_jpeg()
    upstream_port, turnout_port, litellm_port = free_port(), free_port(), free_port()
    quiet_port, sink_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        folder = Path(tmp)
        # `turnout`: logs, metrics, the request record and traces (to a local collector)
        # all on; `turnout, telemetry off`: the same gateway with all of them off.
        config = turnout_yaml(
            folder, turnout_port, upstream_port, TELEMETRY_ON.format(sink=sink_port)
        )
        quiet_config = turnout_yaml(
            folder, quiet_port, upstream_port, TELEMETRY_OFF, name="turnout-quiet"
        )
        os.environ["BENCH_KEY"] = issue_key(folder / "home")
        standin = Server(
            "stand-in",
            [sys.executable, "-m", "turnout.providers.standin", "--port", str(upstream_port)],
            upstream_port,
            log=folder / "standin.log",
        )
        turnout = Server(
            "turnout",
            [*gateway_cpu, str(BIN / "turnout"), "serve", "--config", str(config)],
            turnout_port,
            log=folder / "turnout.log",
        )
        sink = Server(
            "otlp sink",
            [sys.executable, "-c", SINK, str(sink_port)],
            sink_port,
            log=folder / "sink.log",
        )
        quiet = Server(
            "turnout-quiet",
            [*gateway_cpu, str(BIN / "turnout"), "serve", "--config", str(quiet_config)],
            quiet_port,
            log=folder / "turnout-quiet.log",
        )
        procs = [standin, sink, turnout, quiet]
        targets = [
            Target("direct (stand-in)", standin, MODEL),
            Target("turnout, route `bench`", turnout, "bench"),
            Target(f"turnout, model `{MODEL}`", turnout, MODEL),
            Target("turnout, route `bench`, telemetry off", quiet, "bench"),
        ]
        peer = None
        if litellm is not None:
            server = Server(
                "litellm",
                [
                    *gateway_cpu,
                    str(litellm),
                    "--config",
                    str(LITELLM_CONFIG),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(litellm_port),
                    "--num_workers",
                    "1",
                ],
                litellm_port,
                env={
                    "BENCH_UPSTREAM_BASE": f"http://127.0.0.1:{upstream_port}/v1",
                    "LITELLM_LOG": "ERROR",  # no per-request access log, as for turnout
                    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch at start-up
                },
                log=folder / "litellm.log",
            )
            procs.append(server)
            peer = "LiteLLM proxy"
            targets.append(Target(peer, server, MODEL))
        results: list[WorkloadResult] = []
        with servers(procs):
            for t in targets:
                wait_ready(t.server, text_body(t.model))
            _wait_port(sink_port)
            print(f"ready: {', '.join(f'{s.name} :{s.port} (pid {s.pid})' for s in procs)}")
            args.pids = [s.pid for s in procs]
            for workload in args.workloads.split(","):
                bodies: dict[str, Path] = {}
                for t in targets:
                    data = text_body(t.model) if workload == "text" else image_body(t.model, jpeg)
                    path = folder / f"{workload}-{t.model}.json"
                    path.write_bytes(data)
                    bodies[t.name] = path
                print(f"workload {workload}:", flush=True)
                results.append(bench_workload(workload, targets, bodies, args))
                for t in targets:
                    assert t.server.proc is not None
                    if t.server.proc.poll() is not None:
                        raise RuntimeError(f"{t.server.name} died during the run")

    info = versions(litellm)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"Gateway overhead ({when}); machine: {platform.machine()}, {os.cpu_count()} cores "
        f"({cpu_model()}), {platform.platform()}; "
        + ", ".join(f"{k} {v}" for k, v in info.items())
        + f"; pinned: {'yes' if args.pin else 'no'}; image: {len(jpeg):,} byte JPEG, "
        f"{len(base64.b64encode(jpeg)):,} bytes base64."
    )
    text = (
        header + "\n" + report(results, peer, targets[0].name, (targets[1].name, targets[3].name))
    )
    print("\n" + text)
    if args.json:
        raw = [
            {
                "workload": w.name,
                "body_bytes": w.body_bytes,
                "rate": w.rate,
                "wrk": {n: {c: r.__dict__ for c, r in by.items()} for n, by in w.wrk.items()},
                "open": {
                    n: {
                        "p50_ms": o.pct(50) * 1000,
                        "p95_ms": o.pct(95) * 1000,
                        "p99_ms": o.pct(99) * 1000,
                        "p50_ms_per_round": [r.pct(50) * 1000 for r in w.rounds[n]],
                        "mean_ms": statistics.fmean(o.samples) * 1000 if o.samples else None,
                        "n": len(o.samples),
                        "errors": o.errors,
                        "late_sends": o.late_sends,
                        "connections": o.connections,
                        "other_load": o.foreign,
                    }
                    for n, o in w.open.items()
                },
            }
            for w in results
        ]
        args.json.write_bytes(
            orjson.dumps(
                {"header": header, "results": raw},
                option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
            )
        )


if __name__ == "__main__":
    main()
