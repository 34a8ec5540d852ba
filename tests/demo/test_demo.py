"""`turnout demo --no-serve` end to end, as a subprocess: the summary it prints and writes
must be what the ledger holds, read here with our own queries."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.cli import turnout_exe
from turnout.providers.standin import StandInServer

_PROVIDER_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "TURNOUT_DEMO_BASE_URL",
    "TURNOUT_DEMO_MODELS",
    "TURNOUT_DEMO_CATALOG",
    "TURNOUT_DEMO_API_KEY",
    "TURNOUT_DEMO_ENCODER",
)


def _env(**extra: str) -> dict[str, str]:
    """This process's environment without provider keys (the demo would use them)."""
    clean = {k: v for k, v in os.environ.items() if k not in _PROVIDER_ENV}
    return {**clean, "COLUMNS": "200", **extra}


def _demo(home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*turnout_exe(), "demo", "--no-serve", "--home", str(home)],
        capture_output=True,
        text=True,
        env=_env(**env),
        timeout=300,
    )


def _rows(home: Path, sql: str) -> list[Any]:
    engine = create_engine(f"sqlite:///{home / 'ledger.db'}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)).all())
    finally:
        engine.dispose()


def _usd(micros: int) -> str:
    return f"{(Decimal(micros) / 1_000_000).quantize(Decimal('0.000001')):f}"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("demo") / "home"
    out = _demo(home)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return home, out.stdout


def test_it_says_the_providers_are_simulated_first(simulated: tuple[Path, str]) -> None:
    _, stdout = simulated
    head = stdout[:600]
    assert "SIMULATED PROVIDERS" in head and "stand-in upstream" in head
    assert "stand-in CLIP with random weights" in stdout  # and that search order is arbitrary


def test_the_ledger_is_on_the_demo_home(simulated: tuple[Path, str]) -> None:
    home, _ = simulated
    assert (home / "ledger.db").is_file()
    assert (home / "gateway.log").stat().st_size > 0  # one JSON line per request
    first = json.loads((home / "gateway.log").read_text().splitlines()[0])
    assert "request_id" in first


def test_cost_per_tenant_is_the_ledgers(simulated: tuple[Path, str]) -> None:
    home, stdout = simulated
    summary = json.loads((home / "summary.json").read_text())
    ledger = {
        tenant: (int(micros), int(n))
        for tenant, micros, n in _rows(
            home,
            "select tenant_id, sum(cost_micros), count(distinct request_id) from ledger "
            "where state != 'reserved' group by tenant_id",
        )
    }
    assert {t["tenant"] for t in summary["tenants"]} == {"acme", "globex"} == set(ledger)
    for tenant in summary["tenants"]:
        micros, requests = ledger[tenant["tenant"]]
        assert tenant["cost_usd"] == _usd(micros)
        assert tenant["requests"] == requests
        assert f"${_usd(micros)}" in stdout  # the printed table says the same
    globex = next(t for t in summary["tenants"] if t["tenant"] == "globex")
    # The incident: the budget stopped globex short of its $1.00.
    assert globex["daily_budget_usd"] == "1.00"
    assert 0.5 < globex["budget_used"] <= 1.0


def test_requests_by_pattern_and_tier_are_the_ledgers(simulated: tuple[Path, str]) -> None:
    home, _ = simulated
    summary = json.loads((home / "summary.json").read_text())
    counted = Counter(
        {
            (r, p, s, t, o): int(n)
            for r, p, s, t, o, n in _rows(
                home,
                "select route, pattern, start_tier, tier, outcome, count(*) from requests "
                "group by 1, 2, 3, 4, 5",
            )
        }
    )
    shown = Counter(
        {
            (p["route"], p["pattern"], p["start_tier"], p["tier"], p["outcome"]): p["requests"]
            for p in summary["paths"]
        }
    )
    assert shown == counted
    assert summary["requests"] == sum(counted.values())
    patterns = {key[1] for key in counted}
    assert {"direct", "rag"} <= patterns
    # escalations happened, cheap -> strong, on both routes
    assert counted[("auto", "direct", "cheap", "strong", "ok")] >= 1
    assert counted[("docqa", "rag", "cheap", "strong", "ok")] >= 1


def test_escalations_and_their_reasons(simulated: tuple[Path, str]) -> None:
    home, stdout = simulated
    summary = json.loads((home / "summary.json").read_text())
    reasons: Counter[str] = Counter()
    for (escalations,) in _rows(home, "select escalations from requests"):
        reasons.update(r for r in escalations.split(",") if r)
    assert {e["reason"]: e["count"] for e in summary["escalations"]} == dict(reasons)
    assert {"refusal", "empty", "truncated", "citation_missing"} <= set(reasons)
    # the Prometheus counters agree with the ledger
    assert {k: int(v) for k, v in summary["escalations_metric"].items()} == dict(reasons)
    assert "citation_missing" in stdout


def test_the_incident_is_stopped_by_the_cap_then_the_budget(simulated: tuple[Path, str]) -> None:
    home, stdout = simulated
    summary = json.loads((home / "summary.json").read_text())
    refused = {(r["tenant"], r["status"]): r["requests"] for r in summary["refused"]}
    assert refused == {("globex", 413): 1, ("globex", 429): 1}
    stored = _rows(
        home, "select status, error_type from requests where tenant_id = 'globex' and status >= 400"
    )
    assert sorted(s for s, _ in stored) == [413, 429]
    assert "image_token_cap_exceeded" in stdout and "budget_exceeded" in stdout
    alerts = _rows(home, "select tenant_id, kind, threshold from alerts order by threshold")
    assert [(a["tenant"], a["threshold"]) for a in summary["alerts"]] == [
        (t, th) for t, _, th in alerts
    ]
    assert ("globex", "day", 50) in alerts and ("globex", "day", 80) in alerts


def test_image_tokens_by_detail_and_stage_times(simulated: tuple[Path, str]) -> None:
    home, _ = simulated
    summary = json.loads((home / "summary.json").read_text())
    levels = {row["detail"]: row["image_tokens"] for row in summary["image_tokens"]}
    assert {"low", "high"} <= set(levels)
    single = _rows(
        home,
        "select image_detail, sum(image_tokens) from requests where image_count > 0 "
        "and image_detail not like '%,%' group by image_detail",
    )
    for detail, tokens in single:
        level = detail.partition(":")[0]
        assert levels[level] >= int(tokens)
    assert sum(levels.values()) == sum(
        int(n) for (n,) in _rows(home, "select image_tokens from requests")
    )
    # the metrics count the same image tokens as the ledger
    assert sum(summary["image_tokens_metric"].values()) == sum(levels.values())
    stages = {row["stage"]: row for row in summary["stages"]}
    for stage in ("provider", "reserve", "embed", "retrieve", "attach"):
        assert stages[stage]["p95_ms"] >= stages[stage]["p50_ms"] > 0
    assert summary["searches_metric"] == {"text": 2.0, "image": 1.0}


def test_document_questions_cite_the_right_pages(simulated: tuple[Path, str]) -> None:
    _, stdout = simulated
    cited = [line for line in stdout.splitlines() if "(the answer is on p." in line]
    assert len(cited) == 7
    for line in cited:
        answer_page = line.rsplit("p.", 1)[1].rstrip(")")
        assert f"cited p.{answer_page}" in line.replace(", ", " ")


def test_a_home_that_is_not_empty_is_refused(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("keep me")
    out = _demo(tmp_path)
    assert out.returncode == 2
    assert "not empty" in out.stderr and "fresh home" in out.stderr
    assert (tmp_path / "something").read_text() == "keep me"


def test_a_real_openai_compatible_server_is_used_when_configured(tmp_path: Path) -> None:
    """TURNOUT_DEMO_BASE_URL: the demo talks to that server (here a stand-in the test runs,
    playing a local vLLM) and does not call its answers simulated."""
    with StandInServer() as server:
        out = _demo(
            tmp_path / "home",
            TURNOUT_DEMO_BASE_URL=server.url + "/v1",
            TURNOUT_DEMO_MODELS="small-vl,large-vl",
        )
        models = Counter(r.model for r in server.script.received)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "SIMULATED" not in out.stdout
    assert f"{server.url}/v1 (TURNOUT_DEMO_BASE_URL)" in out.stdout
    assert "priced as the catalog's qwen2-vl-7b-instruct" in out.stdout
    assert models["small-vl"] > 20 and set(models) <= {"small-vl", "large-vl"}
    answered = _rows(tmp_path / "home", "select distinct model from ledger where state = 'settled'")
    assert {m for (m,) in answered} <= {"small-vl", "large-vl"}


def test_quality_signals_are_the_ledgers(simulated: tuple[Path, str]) -> None:
    home, _ = simulated
    summary = json.loads((home / "summary.json").read_text())
    ratings = {
        modality: (int(n), int(up))
        for modality, n, up in _rows(
            home,
            "select modality, count(*), sum(rating > 0) from feedback group by modality",
        )
    }
    shown = {r["modality"]: (r["ratings"], r["thumbs_up"]) for r in summary["satisfaction"]}
    assert shown == ratings
    assert ratings["document"][0] == 7 and ratings["image"][0] == 8
    judged = _rows(home, "select count(*) from judgments where status = 'ok'")[0][0]
    rag = _rows(home, "select count(*) from requests where pattern = 'rag'")[0][0]
    assert sum(j["judged"] for j in summary["judged"]) == judged == rag  # every: 1
    gold = _rows(home, "select count(*), avg(gold_hit) from requests where gold_hit is not null")
    (series,) = summary["recall"]
    assert series["k"] == 2
    assert sum(p["gold"] for p in series["points"]) == gold[0][0] == 6
    assert series["points"][0]["recall"] == pytest.approx(gold[0][1])


def test_it_keeps_serving_with_the_dashboard_saying_simulated(tmp_path: Path) -> None:
    """Without --no-serve the gateway stays up after the summary, its dashboard data says
    the providers are simulated, and SIGTERM stops it cleanly."""
    import signal
    import time

    import httpx

    from turnout.providers.standin import free_port

    port = free_port()
    proc = subprocess.Popen(
        [*turnout_exe(), "demo", "--home", str(tmp_path / "home"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops it" in line:
                break
        output = "".join(lines)
        assert "Ctrl-C stops it" in output, output[-3000:]
        admin = next(line for line in lines if line.startswith("dashboard:"))
        assert f"http://127.0.0.1:{port}/dashboard" in admin
        key = admin.split("admin key: ")[1].rstrip(")\n")
        url = f"http://127.0.0.1:{port}"
        data = httpx.get(f"{url}/dashboard/data", headers={"authorization": f"Bearer {key}"})
        assert data.status_code == 200
        assert data.json()["simulated"] is True
        summary = json.loads((tmp_path / "home" / "summary.json").read_text())
        assert data.json()["summary"]["requests"] == summary["requests"]
        assert httpx.get(f"{url}/dashboard").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest[-2000:]
    assert "stopped" in rest
