"""What budget checks add to one request on the default SQLite ledger.

Per request the gateway awaits one reservation (a conditional UPDATE of the tenant's day
and month totals plus the attempt's row) and one settlement (the row and the totals). This
times exactly those two awaits as the gateway makes them, through `LedgerWriter` (on the
event loop when the SQLite lock is free, else batched on a worker thread), sequentially
and with 50 requests in flight.

    .venv/bin/python benches/budget_checks.py [--requests 3000] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import platform
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from turnout.core import Usage
from turnout.gateway.governance import AttemptPlan, Database, Ledger, Policy
from turnout.gateway.governance._writer import LedgerWriter


def plan(i: int, policy: Policy) -> AttemptPlan:
    return AttemptPlan(
        f"bench-{i}", 1, "bench", policy, "user-1", None, "auto", "direct", "cheap",
        "primary", "gpt-4.1-mini", 0, "", 2_000,
    )  # fmt: skip


async def one(writer: LedgerWriter, book: Ledger, i: int, policy: Policy) -> float:
    started = time.perf_counter()
    reservation = await writer.write(lambda conn: book.reserve_in(conn, plan(i, policy)))
    assert not isinstance(reservation, Exception)
    usage = Usage(text_input_tokens=120, output_tokens=40)
    await writer.write(lambda conn: book.settle_in(conn, reservation, usage, 1_100, outcome="ok"))
    return time.perf_counter() - started


async def run(requests: int, in_flight: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="budget-bench-") as tmp:
        db = Database.open(f"sqlite:///{Path(tmp) / 'ledger.db'}")
        book = Ledger(db)
        book.register()
        writer = LedgerWriter(db)
        policy = Policy(daily_budget_usd=Decimal("1000000"), monthly_budget_usd=Decimal("1e7"))
        for i in range(200):  # warm: connections, statement cache, page cache
            await one(writer, book, -i - 1, policy)
        times: list[float] = []
        gate = asyncio.Semaphore(in_flight)

        async def timed(i: int) -> None:
            async with gate:
                times.append(await one(writer, book, i, policy))

        await asyncio.gather(*(timed(i) for i in range(requests)))
        await writer.stop()
        db.close()
        return times


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--write", type=Path, default=None, help="append to this markdown")
    args = parser.parse_args()
    lines = [
        f"### Budget checks on SQLite ({dt.date.today()}, {platform.node()}, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()})",
        "",
        "`.venv/bin/python benches/budget_checks.py --requests "
        f"{args.requests}`: reserve + settle per request, ms",
        "",
        "| requests in flight | p50 | p95 | p99 | requests/s through the ledger |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for in_flight in (1, 50):
        started = time.perf_counter()
        times = asyncio.run(run(args.requests, in_flight))
        rate = args.requests / (time.perf_counter() - started)
        lines.append(
            f"| {in_flight} | {pct(times, 50):.3f} | {pct(times, 95):.3f} | "
            f"{pct(times, 99):.3f} | {rate:,.0f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with args.write.open("a") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
