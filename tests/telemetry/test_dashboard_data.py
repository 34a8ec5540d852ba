"""`dashboard_data` against ledgers we fill ourselves: every aggregate recomputed from the
generated rows, a hand-made percentile case, an empty database, PostgreSQL once."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import insert

from turnout.core import InvalidInputError
from turnout.gateway.governance import Database, Policy
from turnout.gateway.governance._schema import ledger, requests, tenants
from turnout.gateway.telemetry._dashboard_data import dashboard_data, detail_levels, percentile

from .traffic import Traffic, daily_budget, fill

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield db
    db.close()


def _expected(t: Traffic, days: int) -> dict[str, Any]:
    """The dashboard's numbers, recomputed the slow way from the rows we wrote."""
    first = NOW.date() - timedelta(days=days - 1)
    since = datetime.combine(first, time.min, UTC)
    day_list = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    spent = [r for r in t.ledger if r["day"] >= first.isoformat() and r["state"] != "reserved"]
    per_tenant: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_pattern: Counter[str] = Counter()
    by_model: Counter[str] = Counter()
    for r in spent:
        per_tenant[r["tenant_id"]][r["day"]] += r["cost_micros"]
        by_pattern[r["pattern"]] += r["cost_micros"]
        by_model[r["model"]] += r["cost_micros"]
    recent = [r for r in t.requests if r["created_at"] >= since]
    reasons = Counter(x for r in recent for x in r["escalations"].split(",") if x)
    ratings: dict[str, list[int]] = defaultdict(list)
    for f in t.feedback:
        if f["created_at"] >= since:
            ratings[f["modality"]].append(f["rating"])
    faith: dict[str, list[float]] = defaultdict(list)
    judge_failures = 0
    for j in t.judgments:
        if j["created_at"] >= since and j["status"] == "ok":
            faith[j["created_at"].date().isoformat()].append(j["faithfulness"])
        judge_failures += j["created_at"] >= since and j["status"] != "ok"
    recall: dict[tuple[int, str], list[int]] = defaultdict(list)
    for r in recent:
        if r["gold_hit"] is not None:
            recall[(r["recall_k"], r["created_at"].date().isoformat())].append(r["gold_hit"])
    image_tokens: Counter[str] = Counter()
    for r in recent:
        if r["image_count"]:
            levels = detail_levels(r["image_detail"])
            image_tokens[next(iter(levels)) if len(levels) == 1 else "mixed"] += r["image_tokens"]
    return {
        "days": day_list,
        "per_tenant": {
            tid: [per_tenant[tid].get(d, 0) / 1e6 for d in day_list] for tid in per_tenant
        },
        "by_pattern": {k: v / 1e6 for k, v in by_pattern.items()},
        "by_model": {k: v / 1e6 for k, v in by_model.items()},
        "requests": len(recent),
        "tiers": Counter(r["tier"] for r in recent),
        "reasons": dict(reasons),
        "satisfaction": {m: sum(v > 0 for v in rs) / len(rs) for m, rs in ratings.items()},
        "faithfulness": {d: sum(v) / len(v) for d, v in faith.items()},
        "judge_failures": judge_failures,
        "recall": {key: sum(v) / len(v) for key, v in recall.items()},
        "image_tokens": dict(image_tokens),
    }


@pytest.fixture
def db(ledger_db: Database) -> Database:
    return ledger_db  # SQLite, then PostgreSQL (tests/services.py)


def test_every_aggregate_matches_the_rows_written(db: Database) -> None:
    traffic = fill(db, 1500 if db.is_sqlite else 600, now=NOW, seed=3)
    got = dashboard_data(db, days=10, now=NOW)
    want = _expected(traffic, 10)

    assert got["days"] == want["days"]
    assert got["summary"]["requests"] == want["requests"]
    # Requests older than the window exist, so the filter is really exercised.
    assert 0 < want["requests"] < len(traffic.requests)

    tenants_got = {s["tenant"]: s for s in got["cost_per_tenant"]}
    assert set(tenants_got) == set(want["per_tenant"])
    for tid, series in want["per_tenant"].items():
        assert tenants_got[tid]["cost_usd"] == pytest.approx(series, abs=1e-6)
    budgets = {s["tenant"]: s["daily_budget_usd"] for s in got["cost_per_tenant"]}
    n = len(traffic.requests)
    assert budgets == {
        tid: None if (b := daily_budget(tid, n)) is None else float(b)
        for tid in ("acme", "globex", "initech", "hooli")
    }
    assert budgets["hooli"] is None and budgets["acme"] == (0.6 if n == 1500 else 0.24)
    totals = [s["total_usd"] for s in got["cost_per_tenant"]]
    assert totals == sorted(totals, reverse=True)

    assert {r["key"]: r["cost_usd"] for r in got["cost_by_pattern"]} == pytest.approx(
        want["by_pattern"]
    )
    assert {r["key"]: r["cost_usd"] for r in got["cost_by_model"]} == pytest.approx(
        want["by_model"]
    )
    assert {r["tier"]: r["requests"] for r in got["tiers"]} == want["tiers"]
    assert sum(r["share"] for r in got["tiers"]) == pytest.approx(1)
    assert {r["reason"]: r["count"] for r in got["escalations"]} == want["reasons"]
    assert {r["modality"]: r["share_up"] for r in got["satisfaction"]} == pytest.approx(
        want["satisfaction"]
    )
    assert {r["day"]: r["faithfulness"] for r in got["judged"]} == pytest.approx(
        want["faithfulness"], abs=1e-4
    )
    # Failed and timed-out judgments are counted, never averaged in.
    assert sum(r["failed"] for r in got["judged"]) == want["judge_failures"]
    recall = {(s["k"], p["day"]): p["recall"] for s in got["recall"] for p in s["points"]}
    assert recall == pytest.approx(want["recall"], abs=1e-4)
    image_tokens = {s["detail"]: s["total_tokens"] for s in got["image_tokens"]["series"]}
    assert image_tokens == want["image_tokens"]
    assert {"high", "low", "mixed"} <= set(image_tokens)
    stage_names = [r["stage"] for r in got["stages"]["rows"]]
    # RAG requests put embed and retrieve between reserve and the provider call.
    assert stage_names == [
        "parse", "auth", "admission", "route", "reserve", "embed", "retrieve", "attempt_1"
    ]  # fmt: skip
    assert got["stages"]["sampled_requests"] == want["requests"]


def test_an_empty_ledger_gives_empty_series(sqlite_db: Database) -> None:
    got = dashboard_data(sqlite_db, days=14, now=NOW)
    assert len(got["days"]) == 14 and got["days"][-1] == "2026-03-15"
    assert got["summary"] == {"requests": 0, "cost_usd": 0.0, "failed": 0}
    for name in ("cost_per_tenant", "cost_by_pattern", "cost_by_model", "tiers"):
        assert got[name] == [], name
    for name in ("escalations", "satisfaction", "judged", "recall"):
        assert got[name] == [], name
    assert got["stages"]["rows"] == [] and got["stages"]["sampled_requests"] == 0
    assert got["image_tokens"] == {"series": []}
    assert got["freshness"] == {"collections": [], "error": None}
    orjson.dumps(got)  # the route serialises it as is


def _request(rid: str, stages: str, created: datetime, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "request_id": rid, "tenant_id": "acme", "user_id": None, "route": "auto",
        "pattern": "direct", "start_tier": "cheap", "tier": "cheap", "model": "m",
        "attempts": 1, "escalations": "", "outcome": "ok", "error_type": None, "status": 200,
        "modality": "text", "image_count": 0, "image_detail": "", "text_tokens": 1,
        "image_tokens": 0, "audio_tokens": 0, "output_tokens": 1, "cost_micros": 0,
        "latency_ms": 1, "ttft_ms": None, "stages": stages, "retrieved": "[]",
        "gold_hit": None, "recall_k": None, "created_at": created,
    }  # fmt: skip
    return row | extra


def test_stage_percentiles_on_a_hand_made_case(sqlite_db: Database) -> None:
    rows = [
        _request(f"r{ms}", orjson.dumps({"parse": ms, "attempt_1": 100 * ms}).decode(), NOW)
        for ms in range(1, 11)
    ]
    rows.append(_request("bad", "not json", NOW))  # skipped, not fatal
    rows.append(_request("list", "[1, 2]", NOW))
    with sqlite_db.engine.begin() as conn:
        conn.execute(insert(requests), rows)
    got = dashboard_data(sqlite_db, now=NOW)["stages"]
    assert got["sampled_requests"] == 12
    assert got["rows"] == [
        {"stage": "parse", "count": 10, "p50_ms": 5.5, "p95_ms": 9.55},
        {"stage": "attempt_1", "count": 10, "p50_ms": 550.0, "p95_ms": 955.0},
    ]


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([0.0, 10.0], 0.95) == pytest.approx(9.5)
    with pytest.raises(ValueError):
        percentile([], 0.5)


def _attempt(tenant: str, day: str, state: str, cost: int, created: datetime) -> dict[str, Any]:
    return {
        "request_id": uuid.uuid4().hex, "attempt": 1, "tenant_id": tenant, "user_id": None,
        "key_id": None, "instance_id": "t", "route": "auto", "pattern": "rag", "tier": "cheap",
        "provider": "p", "model": "m", "day": day, "month": day[:7], "state": state,
        "outcome": None, "reason": None, "reserved_micros": 9_000_000, "cost_micros": cost,
        "overrun_micros": 0, "text_tokens": 0, "image_tokens": 0, "audio_tokens": 0,
        "cached_tokens": 0, "output_tokens": 0, "image_count": 0, "image_detail": "",
        "latency_ms": None, "ttft_ms": None, "created_at": created, "settled_at": None,
    }  # fmt: skip


def test_budget_lines_and_what_counts_as_spend(sqlite_db: Database) -> None:
    with sqlite_db.engine.begin() as conn:
        conn.execute(
            insert(tenants),
            [
                {"id": "acme", "name": "Acme", "created_at": NOW, "updated_at": NOW,
                 "policy": Policy(daily_budget_usd=12.5).model_dump_json()},
                {"id": "odd", "name": "Odd", "created_at": NOW, "updated_at": NOW,
                 "policy": '{"unknown_key": 1}'},
            ],
        )  # fmt: skip
        conn.execute(
            insert(ledger),
            [
                _attempt("acme", "2026-03-14", "settled", 1_500_000, NOW),
                _attempt("acme", "2026-03-15", "settled", 250_000, NOW),
                _attempt("acme", "2026-03-15", "reserved", 0, NOW),  # in flight: no spend
                _attempt("acme", "2026-03-15", "released", 0, NOW),
                _attempt("acme", "2026-03-01", "settled", 7_000_000, NOW),  # before the window
                _attempt("odd", "2026-03-15", "settled", 1_000, NOW),
            ],
        )
    got = dashboard_data(sqlite_db, days=3, now=NOW)
    assert got["days"] == ["2026-03-13", "2026-03-14", "2026-03-15"]
    assert got["cost_per_tenant"] == [
        {"tenant": "acme", "cost_usd": [0.0, 1.5, 0.25], "total_usd": 1.75,
         "daily_budget_usd": 12.5},
        # A policy this version cannot read still charts its spend, without a budget line.
        {"tenant": "odd", "cost_usd": [0.0, 0.0, 0.001], "total_usd": 0.001,
         "daily_budget_usd": None},
    ]  # fmt: skip
    assert got["cost_by_pattern"] == [{"key": "rag", "cost_usd": 1.751}]


def test_index_freshness_and_its_failures(sqlite_db: Database) -> None:
    got = dashboard_data(
        sqlite_db,
        now=NOW,
        freshness=lambda: [
            {"collection": "docs", "age_s": 120, "slo_s": 3600},
            {"collection": "images", "age_s": 7200, "slo_s": 3600},
            {"collection": "adhoc", "age_s": 5, "slo_s": None},
        ],
    )["freshness"]
    assert got["error"] is None
    assert [(c["collection"], c["stale"]) for c in got["collections"]] == [
        ("docs", False), ("images", True), ("adhoc", False)
    ]  # fmt: skip

    def broken() -> list[dict[str, Any]]:
        raise OSError("index directory is gone")

    failed = dashboard_data(sqlite_db, now=NOW, freshness=broken)
    assert failed["freshness"] == {
        "collections": [],
        "error": "index freshness: OSError: index directory is gone",
    }
    assert failed["summary"]["requests"] == 0  # the rest of the dashboard still answers
    missing = dashboard_data(sqlite_db, now=NOW, freshness=lambda: [{"collection": "x"}])
    assert "KeyError" in missing["freshness"]["error"]


@pytest.mark.parametrize("days", [0, -1, 367])
def test_days_out_of_range_is_refused(sqlite_db: Database, days: int) -> None:
    with pytest.raises(InvalidInputError, match="days"):
        dashboard_data(sqlite_db, days=days)
