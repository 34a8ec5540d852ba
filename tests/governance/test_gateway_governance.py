"""Governance through the real gateway: keys, access, budgets, rate limits, image caps,
the ledger's rows, spend reports and alerts, driven with the official openai SDK."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from sqlalchemy import select

from tests.gateway.harness import png_data_uri, route_settings, running_gateway
from turnout.gateway.governance import Database
from turnout.gateway.governance._schema import alerts, ledger, spend
from turnout.providers.standin import Reply, StandInServer

ADMIN = "admin-secret-for-tests"


class Webhook:
    """A real HTTP endpoint on loopback that records the alerts POSTed to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                outer.received.append(orjson.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def governed(upstream: StandInServer, home: Path, **governance: Any) -> dict[str, Any]:
    settings = route_settings(upstream.url)
    settings["home"] = str(home)
    settings["governance"] = {"require_keys": True, "admin_key": ADMIN, **governance}
    settings["routes"]["strict"] = {**settings["routes"]["auto"], "image_cap": "reject"}
    return settings


class Admin:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=10
        )

    def tenant(self, tenant_id: str, **policy: Any) -> str:
        made = self.http.post("/admin/tenants", json={"id": tenant_id, "policy": policy})
        assert made.status_code == 201, made.text
        key = self.http.post(f"/admin/tenants/{tenant_id}/keys", json={"name": "test"})
        assert key.status_code == 201, key.text
        return str(key.json()["key"])


def client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=30)


def ask(url: str, key: str, **extra: Any) -> Any:
    return client(url, key).chat.completions.with_raw_response.create(
        model=extra.pop("model", "auto"),
        messages=extra.pop("messages", [{"role": "user", "content": "What is a ledger?"}]),
        **extra,
    )


def rows(home: Path, table: Any = ledger) -> list[Any]:
    db = Database.open(f"sqlite:///{home / 'ledger.db'}")
    try:
        with db.engine.connect() as conn:
            return list(conn.execute(select(table)).all())
    finally:
        db.close()


@pytest.fixture
def gateway(standin: StandInServer, tmp_path: Path) -> Iterator[tuple[str, Admin, Path]]:
    with running_gateway(governed(standin, tmp_path)) as url:
        yield url, Admin(url), tmp_path


def test_requests_need_a_valid_unrevoked_key(gateway: tuple[str, Admin, Path]) -> None:
    url, admin, _ = gateway
    key = admin.tenant("acme")
    assert ask(url, key).http_response.status_code == 200
    with pytest.raises(openai.AuthenticationError, match="turnout keys create"):
        httpx_chat(url, None)
    for forged in ("sk-not-ours", key[:-4] + "AAAA", "tk-000000000000-" + "A" * 43):
        with pytest.raises(openai.AuthenticationError, match="invalid API key"):
            ask(url, forged)
    key_id = key.split("-")[1]
    assert admin.http.delete(f"/admin/keys/{key_id}").status_code == 200
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        ask(url, key)


def httpx_chat(url: str, key: str | None) -> None:
    """Through the SDK with no Authorization header at all."""
    c = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    c.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"Authorization": ""} if key is None else {},
    )


def test_admin_api_needs_the_admin_key(gateway: tuple[str, Admin, Path]) -> None:
    url, admin, _ = gateway
    key = admin.tenant("acme")
    assert httpx.get(f"{url}/admin/tenants").status_code == 401
    as_tenant = httpx.get(f"{url}/admin/tenants", headers={"authorization": f"Bearer {key}"})
    assert as_tenant.status_code == 401
    assert as_tenant.json()["error"]["code"] == "invalid_api_key"
    listed = admin.http.get("/admin/tenants").json()["data"]
    assert [t["id"] for t in listed] == ["acme"]
    bad = admin.http.patch("/admin/tenants/acme", json={"policy": {"daily_budget_usd": -1}})
    assert bad.status_code == 400 and "daily_budget_usd" in bad.json()["error"]["message"]


def test_a_route_the_tenant_may_not_use_is_403(gateway: tuple[str, Admin, Path]) -> None:
    url, admin, _ = gateway
    key = admin.tenant("narrow", allowed_routes=["strict"], allowed_models=["gpt-4.1"])
    with pytest.raises(openai.PermissionDeniedError, match="may not use route 'auto'"):
        ask(url, key)
    assert ask(url, key, model="strict").http_response.status_code == 200
    with pytest.raises(openai.PermissionDeniedError, match=r"may not use model 'gpt-4\.1-mini'"):
        ask(url, key, model="gpt-4.1-mini")


def test_budget_refuses_a_request_whose_worst_case_does_not_fit(
    gateway: tuple[str, Admin, Path],
) -> None:
    url, admin, home = gateway
    # gpt-4.1-mini: $1.60 per million output tokens; 3,000 reserved output tokens alone
    # cost $0.0048, over the whole $0.004 budget, while 1,000 ($0.0016) fit.
    key = admin.tenant("small", daily_budget_usd="0.004")
    ok = ask(url, key, max_tokens=1000)
    assert ok.http_response.status_code == 200
    with pytest.raises(openai.RateLimitError) as refused:
        ask(url, key, max_tokens=3000, extra_headers={"x-request-id": "too-big-1"})
    error = refused.value
    assert error.code == "budget_exceeded"
    assert "daily budget of $0.004" in error.message and "resets at" in error.message
    assert int(error.response.headers["retry-after"]) >= 1
    by_request = {r.request_id: r for r in rows(home)}
    assert by_request["too-big-1"].state == "refused"
    assert by_request["too-big-1"].cost_micros == 0
    settled = [r for r in by_request.values() if r.state == "settled"]
    assert len(settled) == 1 and 0 < settled[0].cost_micros < settled[0].reserved_micros
    (day,) = [s for s in rows(home, spend) if s.period == "day"]
    assert day.spent_micros == settled[0].cost_micros and day.reserved_micros == 0


def test_rate_limit_is_429_with_openai_headers(gateway: tuple[str, Admin, Path]) -> None:
    url, admin, _ = gateway
    key = admin.tenant("chatty", tenant_limits={"requests_per_minute": 2})
    first = ask(url, key)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    ask(url, key)
    with pytest.raises(openai.RateLimitError) as limited:
        ask(url, key)
    assert limited.value.code == "rate_limit_exceeded"
    assert "2 requests per minute" in limited.value.message
    assert int(limited.value.response.headers["retry-after"]) >= 1
    assert limited.value.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_image_cap_downscales_or_rejects(
    gateway: tuple[str, Admin, Path], standin: StandInServer
) -> None:
    url, admin, home = gateway
    key = admin.tenant("pics", image_token_cap=600, max_images=3)
    image = {
        "type": "image_url",
        "image_url": {"url": png_data_uri((1024, 1024)), "detail": "high"},
    }
    message = [{"role": "user", "content": [{"type": "text", "text": "describe"}, image]}]
    # gpt-4.1-mini counts 32 px patches (x1.62): 1,659 tokens for 1024x1024, over the cap.
    done = ask(url, key, messages=message)
    note = done.headers["x-turnout-image-cap"]
    assert "resized" in note and "1659 ->" in note
    sent = standin.script.requests_for("gpt-4.1-mini")[-1].body
    sent_url = sent["messages"][0]["content"][1]["image_url"]["url"]
    assert sent_url.startswith("data:image/jpeg;base64,")
    (row,) = [r for r in rows(home) if r.state == "settled"]
    assert row.image_count == 1 and row.image_detail == "high:1"
    with pytest.raises(openai.APIStatusError) as rejected:
        ask(url, key, model="strict", messages=message)
    assert rejected.value.status_code == 413
    assert rejected.value.code == "image_token_cap_exceeded"
    assert "1,659 image tokens" in rejected.value.message and "600" in rejected.value.message
    many = [{"role": "user", "content": [image, image, image, image]}]
    with pytest.raises(openai.APIStatusError, match="at most 3 per request") as too_many:
        ask(url, key, messages=many)
    assert too_many.value.status_code == 413


def test_every_attempt_is_a_ledger_row(
    gateway: tuple[str, Admin, Path], standin: StandInServer
) -> None:
    url, admin, home = gateway
    key = admin.tenant("acme")
    standin.script.push("gpt-4.1-mini", Reply(content=""))  # cheap answer fails: escalate
    reply = ask(url, key, extra_headers={"x-request-id": "climb-1"}, user="alice")
    assert reply.headers["x-turnout-tenant"] == "acme"
    attempts = sorted((r for r in rows(home) if r.request_id == "climb-1"), key=lambda r: r.attempt)
    assert [(r.tier, r.outcome, r.reason) for r in attempts] == [
        ("cheap", "escalated", "empty"),
        ("strong", "ok", None),
    ]
    assert all(r.user_id == "alice" and r.state == "settled" for r in attempts)
    total = sum(r.cost_micros for r in attempts) / 1e6
    assert float(reply.headers["x-turnout-cost-usd"]) == pytest.approx(total, abs=2e-6)


def test_a_tenant_reads_only_its_own_spend(gateway: tuple[str, Admin, Path]) -> None:
    url, admin, _ = gateway
    a, b = admin.tenant("alpha"), admin.tenant("beta")
    ask(url, a)
    ask(url, b)
    own = httpx.get(f"{url}/v1/spend?by=model", headers={"authorization": f"Bearer {a}"})
    assert own.status_code == 200
    assert own.json()["tenant"] == "alpha" and own.json()["rows"][0]["requests"] == 1
    other = httpx.get(f"{url}/v1/spend?tenant=beta", headers={"authorization": f"Bearer {a}"})
    assert other.status_code == 403
    report = admin.http.get("/admin/spend", params={"by": "tenant"}).json()
    assert {r["tenant"] for r in report["rows"]} == {"alpha", "beta"}


def test_alerts_fire_once_per_threshold_before_the_cap(
    standin: StandInServer, tmp_path: Path, webhook: Webhook
) -> None:
    settings = governed(standin, tmp_path, alerts={"webhook_url": webhook.url})
    # Each answer bills 1,000 output tokens on gpt-4.1-mini: $0.0016 plus its prompt.
    standin.script.push("gpt-4.1-mini", Reply(completion_tokens=1000, times=None))
    with running_gateway(settings) as url:
        admin = Admin(url)
        key = admin.tenant("burner", daily_budget_usd="0.01")
        outcomes = []
        for _ in range(8):
            try:
                ask(url, key, max_tokens=1000, user="mallory")
                outcomes.append("ok")
            except openai.RateLimitError as exc:
                outcomes.append(str(exc.code))
        deadline = time.monotonic() + 5
        while len(webhook.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert outcomes[:5] == ["ok"] * 5 and outcomes[-1] == "budget_exceeded"
    thresholds = [a["threshold_percent"] for a in webhook.received if a["kind"] == "day"]
    assert thresholds[:2] == [50, 80]
    fifty = next(a for a in webhook.received if a["threshold_percent"] == 50)
    assert fifty["tenant"] == "burner" and fifty["limit_usd"] == "0.010000"
    assert fifty["top_spenders"][0]["user"] == "mallory"
    assert fifty["top_requests"] and fifty["top_requests"][0]["model"] == "gpt-4.1-mini"
    stored = rows(tmp_path, alerts)
    assert sorted(r.threshold for r in stored if r.kind == "day") == sorted(set(thresholds))
    assert all(r.delivered_at is not None for r in stored)
