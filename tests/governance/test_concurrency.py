"""Budgets under concurrency: 200 requests at once against a budget that fits about 50 of their
worst cases, on one process with SQLite and on three `turnout serve` processes sharing
PostgreSQL and Redis.

What must hold whatever the interleaving: the settled spend never exceeds the budget (the
stand-in reports less usage than each reservation, so nothing may pass it); the `spend` table's
running totals equal the sum of the ledger's rows; a refused request has no charged row; nothing
is left reserved; and the budget is not under-used either (a refusal means the budget really was
committed to requests that went through).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import select

from tests.cli import turnout_exe
from tests.services import own_schema
from turnout.core import Settings, load_catalog
from turnout.gateway import BackgroundGateway
from turnout.gateway.governance._database import Database
from turnout.gateway.governance._policy import Policy, RateLimitPolicy
from turnout.gateway.governance._schema import ledger, spend
from turnout.gateway.governance._tenants import TenantDirectory
from turnout.providers.standin import Reply, Served, StandInServer, free_port

MODEL = "gpt-4.1-mini"
ROUTE = "metered"
MAX_TOKENS = 1000  # the output bound each reservation holds
PROMPT_TOKENS = 50  # what the stand-in reports: under the body's bytes (the input bound)
COMPLETION_TOKENS = 900  # ... and under max_tokens, so usage < reservation
# About 50 worst cases: each reserves ~1650 micro-dollars (1000 output tokens at $1.60/M plus
# the body's ~130 bytes at $0.40/M).
BUDGET = Decimal("0.0825")
REQUESTS = 200


def gateway_config(upstream_url: str, **governance: Any) -> dict[str, Any]:
    return {
        "log_level": "warning",
        "gateway": {"deadline_s": 30},
        "governance": {"require_keys": True, **governance},
        "providers": {
            "up": {
                "kind": "openai",
                "base_url": upstream_url + "/v1",
                "api_key": "sk-upstream",
                "timeout_s": 20,
                # One try per request: a retry would reserve again and blur the counting.
                "retry": {"attempts": 0},
                "circuit": {"failures": 100_000},
            }
        },
        "routes": {
            ROUTE: {
                "tiers": [{"name": "only", "deployments": [{"provider": "up", "model": MODEL}]}]
            }
        },
    }


def unit_cost_micros(usage: dict[str, Any]) -> int:
    """What the catalog's price makes of the usage the stand-in reported (no cache, no images)."""
    price = load_catalog([]).get(MODEL).price
    amount = (
        Decimal(usage["prompt_tokens"]) * price.input
        + Decimal(usage["completion_tokens"]) * price.output
    )
    return int(amount.to_integral_value(rounding=ROUND_CEILING))  # $/M tokens = micros/token


def new_tenant(db: Database, tenant_id: str, policy: Policy) -> str:
    directory = TenantDirectory(db)
    directory.create_tenant(tenant_id, None, policy)
    key, _info = directory.create_key(tenant_id)
    return key


def body(marker: str) -> dict[str, Any]:
    # Same length for every request, so every reservation is the same.
    return {
        "model": ROUTE,
        "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": f"question {marker}"}],
    }


@dataclass
class Result:
    request_id: str
    status: int
    code: str | None
    message: str = ""


async def fire(urls: Sequence[str], key: str, prefix: str, count: int = REQUESTS) -> list[Result]:
    """`count` requests at once, spread over `urls`; each carries its own x-request-id (the
    ledger's request id)."""
    # A fresh connection each time: a kept-alive one the server closes at the moment it is
    # reused fails with a ReadError, and whether that request was served is then unknown.
    limits = httpx.Limits(max_connections=count + 50, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=45) as client:

        async def one(i: int) -> Result:
            request_id = f"{prefix}-{i:04d}"
            response = await client.post(
                f"{urls[i % len(urls)]}/v1/chat/completions",
                json=body(request_id),
                headers={"authorization": f"Bearer {key}", "x-request-id": request_id},
            )
            if response.status_code == 200:
                return Result(request_id, 200, None)
            error = response.json()["error"]
            return Result(request_id, response.status_code, error["code"], error["message"])

        return list(await asyncio.gather(*(one(i) for i in range(count))))


def standin_replies(upstream: StandInServer, delay: float) -> None:
    upstream.script.push(
        MODEL,
        Reply(
            delay=delay,
            prompt_tokens=PROMPT_TOKENS,
            completion_tokens=COMPLETION_TOKENS,
            times=None,
        ),
    )


def served_for(upstream: StandInServer, results: list[Result]) -> list[Served]:
    """The stand-in's record once it holds every answer a client got (it stamps each just
    after sending it, so a client may read its answer a moment before it is recorded)."""
    expected = sum(r.status == 200 for r in results)
    deadline = time.monotonic() + 5
    while len(upstream.script.served) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return upstream.script.served_list()


def check_books(
    db: Database, tenant_id: str, budget_micros: int, results: list[Result], served: list[Served]
) -> Counter[str]:
    """Every assertion the proof asks of the ledger after the storm; the outcome counts."""
    with db.engine.connect() as conn:
        rows = conn.execute(select(ledger).where(ledger.c.tenant_id == tenant_id)).all()
        totals = conn.execute(select(spend).where(spend.c.tenant_id == tenant_id)).all()
    statuses = Counter("ok" if r.status == 200 else r.code or str(r.status) for r in results)
    unexpected = [r for r in results if r.status != 200 and r.code != "budget_exceeded"]
    assert not unexpected, (statuses, unexpected[:3])
    ok = statuses["ok"]
    assert 0 < ok < REQUESTS, statuses

    # Nothing left open; one row per request (no retries), matching what each was told.
    assert not [r for r in rows if r.state == "reserved"]
    by_request = {r.request_id: r for r in rows}
    assert len(by_request) == len(rows) == REQUESTS
    for result in results:
        row = by_request[result.request_id]
        if result.status == 200:
            assert row.state == "settled" and row.outcome == "ok", row
        else:  # refused and charged nothing
            assert row.state == "refused" and row.cost_micros == 0 and row.reserved_micros == 0

    # Each success is charged what the stand-in reported it served, no more (no overrun).
    charged = [r for r in rows if r.state == "settled"]
    assert len(served) == ok
    costs = {unit_cost_micros(s.usage) for s in served}
    assert {r.cost_micros for r in charged} == costs and len(costs) == 1
    cost = costs.pop()
    reserve = max(r.reserved_micros for r in charged)
    assert cost < min(r.reserved_micros for r in charged)
    assert sum(r.overrun_micros for r in rows) == 0

    # The bound: usage never exceeded a reservation, so the spend stays within the budget.
    total = sum(r.cost_micros for r in rows)
    assert total <= budget_micros
    # The running totals are the rows' sum, for the day and for the month, with nothing held.
    assert {t.period for t in totals} == {"day", "month"}
    for t in totals:
        assert (t.spent_micros, t.reserved_micros, t.overrun_micros) == (total, 0, 0), t
    # Not under-used: at the last refusal more than `budget - reserve` was committed to
    # accepted requests, each of which then settled at `cost` of its `reserve`.
    assert total * reserve > (budget_micros - reserve) * cost, (total, budget_micros)
    return statuses


# -- one process, SQLite -------------------------------------------------------------------


def test_budget_holds_under_200_concurrent_requests_on_sqlite(tmp_path: Path) -> None:
    tenant_id = f"conc-{uuid.uuid4().hex[:8]}"
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    db = Database.open(url)
    try:
        key = new_tenant(db, tenant_id, Policy(daily_budget_usd=BUDGET))
        settings = {"home": str(tmp_path), **gateway_config("http://127.0.0.1:1")}
        with StandInServer() as upstream:
            settings["providers"]["up"]["base_url"] = upstream.url + "/v1"
            standin_replies(upstream, delay=0.3)  # hold reservations while others arrive
            with BackgroundGateway(Settings.model_validate(settings)) as gateway:
                results = asyncio.run(asyncio.wait_for(fire([gateway], key, "s"), 60))
            served = served_for(upstream, results)
        check_books(db, tenant_id, int(BUDGET * 1_000_000), results, served)
    finally:
        db.close()


# -- three processes, PostgreSQL and Redis -------------------------------------------------


def start_serve(config: Path, home: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`turnout serve --config config` on a free port, its output to `log` (not yet healthy:
    start several, then wait for each)."""
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*turnout_exe(), "serve", "--config", str(config), "--port", str(port)],
            env={**os.environ, "TURNOUT_HOME": str(home)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, f"http://127.0.0.1:{port}"


def wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"turnout serve exited {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"turnout serve did not become healthy: {log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@contextmanager
def serving(config: dict[str, Any], tmp_path: Path, count: int) -> Iterator[list[str]]:
    """`count` `turnout serve` processes on one config, started together."""
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    procs: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for n in range(count):
            log = tmp_path / f"serve-{n}.log"
            procs.append((*start_serve(path, tmp_path / f"home-{n}", log), log))
        for proc, url, log in procs:
            wait_healthy(proc, url, log)
        yield [url for _, url, _ in procs]
    finally:
        for proc, _, _ in procs:  # all at once, then wait for each
            if proc.poll() is None:
                proc.terminate()
        for proc, _, _ in procs:
            stop(proc)


def most_at_once(served: list[Served]) -> int:
    """The most answers the stand-in was working on at the same moment."""
    # Trim each end by a hair: the stand-in stamps `finished` just after its last send, which
    # the gateway may already have answered (releasing its lease) by then.
    events = sorted(
        [(s.started, 1) for s in served] + [(s.finished - 0.005, -1) for s in served],
        key=lambda e: (e[0], e[1]),
    )
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


CONCURRENT = 10  # the limit tenant's concurrent requests, across all replicas


def test_budget_and_concurrency_hold_across_three_gateways_on_postgres_and_redis(
    tmp_path: Path,
    postgres_url: str,  # the fixtures (tests/governance/conftest.py) skip without the servers
    redis_url: str,
) -> None:
    run = uuid.uuid4().hex[:8]
    budgeted, limited = f"conc-{run}", f"limit-{run}"
    with own_schema(postgres_url) as database_url:
        db = Database.open(database_url)
        try:
            check_replicas(db, database_url, redis_url, budgeted, limited, tmp_path)
        finally:
            db.close()


def check_replicas(
    db: Database, database_url: str, redis: str, budgeted: str, limited: str, tmp_path: Path
) -> None:
    """A budgeted tenant, then a rate-limited one, through the same three replicas."""
    budget_key = new_tenant(db, budgeted, Policy(daily_budget_usd=BUDGET))
    limit_key = new_tenant(
        db, limited, Policy(tenant_limits=RateLimitPolicy(concurrent=CONCURRENT))
    )
    with StandInServer() as upstream:
        standin_replies(upstream, delay=0.3)
        config = gateway_config(upstream.url, database_url=database_url, redis_url=redis)
        with serving(config, tmp_path, 3) as urls:
            # All 200 at once on three processes: many reserve at the same moment, with
            # the budget nearly gone, on 30 database connections.
            results = asyncio.run(asyncio.wait_for(fire(urls, budget_key, "p"), 60))
            budget_served = served_for(upstream, results)
            upstream.script.served.clear()
            # 60 at once, each held 0.3 s by the stand-in: three in-process limiters would
            # let 3 * CONCURRENT through; Redis must hold the tenant to CONCURRENT.
            limit_results = asyncio.run(
                asyncio.wait_for(fire(urls, limit_key, "l", 6 * CONCURRENT), 30)
            )
            limit_served = served_for(upstream, limit_results)
    statuses = check_books(db, budgeted, int(BUDGET * 1_000_000), results, budget_served)
    with db.engine.connect() as conn:
        # Every replica served some, so this was a test of replicas.
        replicas = conn.execute(
            select(ledger.c.instance_id)
            .where(ledger.c.tenant_id == budgeted, ledger.c.state == "settled")
            .distinct()
        ).all()
        limit_rows = conn.execute(select(ledger).where(ledger.c.tenant_id == limited)).all()
    assert len(replicas) == 3, statuses

    limit_statuses = Counter(r.code or "ok" for r in limit_results)
    assert set(limit_statuses) == {"ok", "rate_limit_exceeded"}, limit_statuses
    assert CONCURRENT <= limit_statuses["ok"] == len(limit_served)
    assert 1 < most_at_once(limit_served) <= CONCURRENT
    # Turned away before reserving: only the admitted ones have rows, all settled.
    ok_ids = {r.request_id for r in limit_results if r.status == 200}
    assert {r.request_id for r in limit_rows} == ok_ids
    assert {r.state for r in limit_rows} == {"settled"}
