"""Each observability signal end to end: requests through the real gateway (openai SDK,
stand-in upstream), then the log line, the server-timing header, /metrics, the spans
(in-memory exporter), the stored record and feedback."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.harness import png_data_uri
from tests.governance.test_gateway_governance import Admin, client, governed, rows
from turnout.core import Settings
from turnout.gateway import BackgroundGateway
from turnout.gateway.governance._schema import feedback, requests
from turnout.providers.standin import Reply, StandInServer


@pytest.fixture(scope="module")
def upstream() -> Iterator[StandInServer]:
    with StandInServer() as server:
        yield server


class Gateway:
    def __init__(self, url: str, home: Path, spans: InMemorySpanExporter, app: Any) -> None:
        self.url, self.home, self.spans, self.app = url, home, spans, app
        self.admin = Admin(url)

    def flush(self) -> None:
        """Wait for the batched request records to reach the database."""
        time.sleep(0.6)


@pytest.fixture
def gateway(upstream: StandInServer, tmp_path: Path) -> Iterator[Gateway]:
    upstream.script.reset()
    spans = InMemorySpanExporter()
    background = BackgroundGateway(
        Settings.model_validate(governed(upstream, tmp_path)), span_exporter=spans
    )
    with background as url:
        yield Gateway(url, tmp_path, spans, background.app)


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.name == "turnout.gateway.requests" and r.getMessage().startswith("{")
    ]


def _line(caplog: pytest.LogCaptureFixture, request_id: str) -> dict[str, Any]:
    """The request's log line; it is written just after the response, so wait for it."""
    deadline = time.monotonic() + 5
    while True:
        found = [x for x in _lines(caplog) if x["request_id"] == request_id]
        if found or time.monotonic() > deadline:
            (line,) = found
            return line
        time.sleep(0.02)


def _image_message(detail: str = "high") -> list[dict[str, Any]]:
    image = {"type": "image_url", "image_url": {"url": png_data_uri((512, 512)), "detail": detail}}
    return [{"role": "user", "content": [{"type": "text", "text": "what is it?"}, image]}]


def test_one_log_line_per_request_with_every_field_and_no_secrets(
    gateway: Gateway, upstream: StandInServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="turnout.gateway.requests")
    key = gateway.admin.tenant("acme")
    upstream.script.push("gpt-4.1-mini", Reply(content=""))  # escalate once
    raw = client(gateway.url, key).chat.completions.with_raw_response.create(
        model="auto", messages=_image_message(), user="ann",
        extra_headers={"x-request-id": "log-1"},
    )  # fmt: skip
    assert raw.http_response.status_code == 200
    line = _line(caplog, "log-1")
    assert line["tenant"] == "acme" and line["user"] == "ann"
    assert (line["route"], line["pattern"], line["start"], line["tier"]) == (
        "auto", "direct", "cheap", "strong",
    )  # fmt: skip
    assert line["tiers"] == ["cheap", "strong"] and line["escalations"] == ["empty"]
    assert line["model"] == "primary/gpt-4.1" and len(line["attempts"]) == 2
    assert line["images"] == 1 and line["image_detail"] == "high:1"
    assert line["tokens"]["image"] > 0 and line["tokens"]["output"] > 0
    assert line["outcome"] == "ok" and line["error_type"] is None
    assert float(line["cost_usd"]) == pytest.approx(float(raw.headers["x-turnout-cost-usd"]))
    for stage in ("auth", "parse", "image_count", "route", "admission", "reserve", "provider",
                  "checks", "settle", "response"):  # fmt: skip
        assert stage in line["stages_ms"], stage
    text = json.dumps(line)
    assert key not in text and "sk-primary" not in text and "base64" not in text
    assert "prompt" not in line and "what is it" not in text  # prompts are opt-in


def test_prompt_text_is_logged_only_for_a_tenant_that_opted_in(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="turnout.gateway.requests")
    key = gateway.admin.tenant("open", log_prompts=True)
    client(gateway.url, key).chat.completions.create(
        model="auto", messages=_image_message(), extra_headers={"x-request-id": "log-2"}
    )
    line = _line(caplog, "log-2")
    assert line["prompt"] == "user: what is it?"  # the text; never the image


def test_failures_are_logged_with_their_error_type(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="turnout.gateway.requests")
    key = gateway.admin.tenant("tight", daily_budget_usd="0.000001")
    with pytest.raises(openai.RateLimitError):
        client(gateway.url, key).chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-request-id": "log-3"},
        )  # fmt: skip
    line = _line(caplog, "log-3")
    assert line["outcome"] == "refused" and line["error_type"] == "BudgetExceededError"
    assert line["status"] == 429 and line["tenant"] == "tight"


def test_server_timing_header_lists_the_stages(gateway: Gateway) -> None:
    key = gateway.admin.tenant("acme")
    raw = client(gateway.url, key).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi"}]
    )
    timing = dict(part.strip().split(";dur=") for part in raw.headers["server-timing"].split(","))
    assert {"auth", "parse", "route", "reserve", "provider", "settle"} <= set(timing)
    assert all(float(v) >= 0 for v in timing.values())


def _metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_requests_tokens_cost_and_escalations(
    gateway: Gateway, upstream: StandInServer
) -> None:
    key = gateway.admin.tenant("acme", daily_budget_usd="2")
    sdk = client(gateway.url, key)
    upstream.script.push("gpt-4.1-mini", Reply(content="I'm sorry, but I can't help with that."))
    sdk.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    sdk.chat.completions.create(model="auto", messages=_image_message("low"))
    series = _metrics(gateway.url)

    def value(name: str, **labels: str) -> float:
        return series.get((name, tuple(sorted(labels.items()))), 0.0)

    ok_strong = value(
        "turnout_requests_total", route="auto", pattern="direct",
        model="primary/gpt-4.1", outcome="ok",
    )  # fmt: skip
    ok_cheap = value(
        "turnout_requests_total", route="auto", pattern="direct",
        model="primary/gpt-4.1-mini", outcome="ok",
    )  # fmt: skip
    assert (ok_strong, ok_cheap) == (1, 1)
    assert value("turnout_escalations_total", route="auto", reason="refusal") == 1
    assert value("turnout_tokens_total", modality="image", detail="low") > 0
    assert value("turnout_cost_usd_total", tenant="acme", pattern="direct") > 0
    assert value("turnout_stage_seconds_count", stage="provider") >= 2
    assert value("turnout_circuit_state", deployment="primary/gpt-4.1-mini") == 0
    left = value("turnout_budget_remaining_usd", tenant="acme", period="day")
    spent = value("turnout_cost_usd_total", tenant="acme", pattern="direct")
    assert left == pytest.approx(2 - spent, abs=1e-5)
    labels = {dict(k[1]).get("request_id") for k in series} | {
        dict(k[1]).get("user") for k in series
    }
    assert labels == {None}  # no per-request or per-user label anywhere


def test_spans_per_stage_and_a_genai_chat_span_continuing_the_callers_trace(
    gateway: Gateway,
) -> None:
    key = gateway.admin.tenant("acme")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    client(gateway.url, key).chat.completions.create(
        model="auto", messages=_image_message(),
        extra_headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )  # fmt: skip
    deadline = time.monotonic() + 5  # spans are made just after the response
    while not any(s.name == "chat.completions" for s in gateway.spans.get_finished_spans()):
        assert time.monotonic() < deadline, "no request span"
        time.sleep(0.02)
    spans = gateway.spans.get_finished_spans()
    names = {s.name for s in spans}
    assert {"chat.completions", "auth", "parse", "route", "chat gpt-4.1-mini"} <= names
    assert {format(s.context.trace_id, "032x") for s in spans} == {trace_id}
    (chat,) = [s for s in spans if s.name == "chat gpt-4.1-mini"]
    attrs = dict(chat.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "primary"
    assert attrs["gen_ai.usage.image.input_tokens"] > 0
    assert attrs["gen_ai.usage.input_tokens"] == (
        attrs["gen_ai.usage.text.input_tokens"] + attrs["gen_ai.usage.image.input_tokens"]
    )
    (root,) = [s for s in spans if s.name == "chat.completions"]
    assert chat.parent is not None and chat.parent.span_id == root.context.span_id


def test_the_request_record_and_feedback_by_modality(gateway: Gateway) -> None:
    key, other = gateway.admin.tenant("acme"), gateway.admin.tenant("rival")
    sdk = client(gateway.url, key)
    text = sdk.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi"}]
    )
    image = sdk.chat.completions.with_raw_response.create(model="auto", messages=_image_message())
    ids = [text.headers["x-request-id"], image.headers["x-request-id"]]

    def give(who: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{gateway.url}/v1/feedback", json=body, headers={"authorization": f"Bearer {who}"}
        )

    assert give(key, {"request_id": ids[0], "rating": "up"}).status_code == 201
    made = give(key, {"request_id": ids[1], "rating": "down", "comment": "wrong", "labels": ["x"]})
    assert made.status_code == 201 and made.json()["modality"] == "image"
    # Another tenant's request and an unknown one look the same: 404.
    assert give(other, {"request_id": ids[0], "rating": "up"}).status_code == 404
    assert give(key, {"request_id": "nope", "rating": "up"}).status_code == 404
    long = give(key, {"request_id": ids[0], "rating": "up", "comment": "x" * 5000})
    assert long.status_code == 400 and "comment" in long.json()["error"]["message"]
    assert give(key, {"request_id": ids[0], "rating": "meh"}).status_code == 400
    gateway.flush()
    stored = {r.request_id: r for r in rows(gateway.home, requests)}
    assert stored[ids[0]].modality == "text" and stored[ids[1]].modality == "image"
    assert stored[ids[1]].image_count == 1 and stored[ids[1]].tenant_id == "acme"
    assert json.loads(stored[ids[1]].stages)["provider"] > 0
    ratings = sorted((r.modality, r.rating) for r in rows(gateway.home, feedback))
    assert ratings == [("image", -1), ("text", 1)]
    series = _metrics(gateway.url)
    assert series[("turnout_feedback_total", (("modality", "image"), ("rating", "down")))] == 1


def test_an_unreachable_otlp_endpoint_never_affects_requests(
    upstream: StandInServer, tmp_path: Path
) -> None:
    settings = governed(upstream, tmp_path)
    settings["telemetry"] = {"otlp_endpoint": "http://127.0.0.1:9/v1/traces"}  # nothing there
    with BackgroundGateway(Settings.model_validate(settings)) as url:
        key = Admin(url).tenant("acme")
        for _ in range(3):
            reply = client(url, key).chat.completions.create(
                model="auto", messages=[{"role": "user", "content": "hi"}]
            )
            assert reply.choices[0].message.content


def test_a_bad_otlp_endpoint_is_a_config_error(upstream: StandInServer, tmp_path: Path) -> None:
    from turnout.core import ConfigError

    settings = governed(upstream, tmp_path)
    settings["telemetry"] = {"otlp_endpoint": "collector:4318"}
    with pytest.raises(ConfigError, match=r"telemetry\.otlp_endpoint"):
        BackgroundGateway(Settings.model_validate(settings))
