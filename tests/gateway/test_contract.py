"""The gateway as an OpenAI drop-in: the official SDK over a real socket."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import httpx
import openai
import pytest

from turnout.providers.standin import Reply, StandInServer

from .harness import png_data_uri, sdk

USER = [{"role": "user", "content": "What is a turnout on a railway?"}]


def test_plain_completion_with_turnout_headers(gateway: str, standin: StandInServer) -> None:
    raw = sdk(gateway).chat.completions.with_raw_response.create(model="auto", messages=USER)
    answer = raw.parse()
    assert (
        answer.choices[0].message.content
        == "Simulated answer from gpt-4.1-mini to: What is a turnout on a railway?"
    )
    assert answer.model == "gpt-4.1-mini"
    assert raw.headers["x-turnout-route"] == "auto; pattern=direct; tier=cheap"
    assert raw.headers["x-turnout-model"] == "primary/gpt-4.1-mini"
    assert raw.headers["x-turnout-attempts"] == "1"
    assert re.fullmatch(r"[0-9a-f]{24}", raw.headers["x-request-id"])  # prefix + counter
    # Cost from the stand-in's usage at gpt-4.1-mini's catalog price ($0.40 in, $1.60 out).
    usage = answer.usage
    assert usage is not None
    expected = (
        Decimal(usage.prompt_tokens) * Decimal("0.40")
        + Decimal(usage.completion_tokens) * Decimal("1.60")
    ) / 10**6
    assert Decimal(raw.headers["x-turnout-cost-usd"]) == expected.quantize(Decimal("0.000001"))


def test_client_request_id_is_kept(gateway: str, standin: StandInServer) -> None:
    r = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={"model": "auto", "messages": USER},
        headers={"x-request-id": "trace-42"},
    )
    assert r.headers["x-request-id"] == "trace-42"


def test_streaming_with_usage_and_cost_comment(gateway: str, standin: StandInServer) -> None:
    chunks = list(
        sdk(gateway).chat.completions.create(
            model="auto", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Simulated answer from gpt-4.1-mini to: What is a turnout on a railway?"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert chunks[-1].choices == []
    with httpx.stream(
        "POST",
        f"{gateway}/v1/chat/completions",
        json={"model": "auto", "messages": USER, "stream": True},
    ) as r:
        body = r.read().decode()
        assert r.headers["x-turnout-model"] == "primary/gpt-4.1-mini"
    assert '"usage"' not in body  # not asked for, not sent
    assert ": x-turnout-cost-usd=0.0000" in body
    assert body.rstrip().endswith("data: [DONE]")


def test_upstream_always_reports_usage_on_streams(gateway: str, standin: StandInServer) -> None:
    list(sdk(gateway).chat.completions.create(model="auto", messages=USER, stream=True))
    sent = standin.script.requests_for("gpt-4.1-mini")[-1].body
    assert sent["stream_options"] == {"include_usage": True}


def test_image_parts_data_uri_and_url(gateway: str, standin: StandInServer) -> None:
    standin.script.push("gpt-4.1-mini", Reply(prompt_tokens=1700))
    content = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": png_data_uri((1024, 1024)), "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
    ]
    chunks = list(
        sdk(gateway).chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": content}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = chunks[-1].usage
    assert usage is not None
    # gpt-4.1-mini counts 1024x1024 as 1024 patches x 1.62 = 1659 image tokens.
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.image_tokens == 1659
    assert usage.prompt_tokens == 1700
    sent = standin.script.requests_for("gpt-4.1-mini")[-1].body["messages"][0]["content"]
    assert sent[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert sent[2]["image_url"] == {"url": "https://example.com/cat.jpg", "detail": "low"}


def test_json_schema_rule_starts_strong(gateway: str, standin: StandInServer) -> None:
    standin.script.push("gpt-4.1", Reply(content='{"city": "Oslo"}'))
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    raw = sdk(gateway).chat.completions.with_raw_response.create(
        model="auto",
        messages=USER,
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema}},
    )
    assert json.loads(raw.parse().choices[0].message.content or "") == {"city": "Oslo"}
    assert raw.headers["x-turnout-route"] == "auto; pattern=direct; tier=strong"
    sent = standin.script.requests_for("gpt-4.1")[-1].body
    assert sent["response_format"]["json_schema"]["schema"] == schema


def test_tools_pass_through(gateway: str, standin: StandInServer) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
    }
    standin.script.push(
        "gpt-4.1-mini", Reply(content="", tool_calls=[call], finish_reason="tool_calls")
    )
    tools = [
        {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    ]
    answer = sdk(gateway).chat.completions.create(
        model="auto",
        messages=USER,
        tools=tools,
        tool_choice="auto",  # type: ignore[arg-type]
    )
    calls = answer.choices[0].message.tool_calls
    assert calls is not None and calls[0].function.name == "weather"  # type: ignore[union-attr]
    assert answer.choices[0].finish_reason == "tool_calls"
    sent = standin.script.requests_for("gpt-4.1-mini")[-1].body
    assert sent["tools"] == tools and sent["tool_choice"] == "auto"


def test_sampling_parameters_reach_upstream(gateway: str, standin: StandInServer) -> None:
    sdk(gateway).chat.completions.create(
        model="auto", messages=USER, max_completion_tokens=50, temperature=0.2, n=1
    )
    sent = standin.script.requests_for("gpt-4.1-mini")[-1].body
    assert (sent["max_completion_tokens"], sent["temperature"], sent["n"]) == (50, 0.2, 1)


def test_unknown_fields_are_accepted_not_forwarded(gateway: str, standin: StandInServer) -> None:
    r = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={"model": "auto", "messages": USER, "frobnicate": True},
    )
    assert r.status_code == 200
    assert "frobnicate" not in standin.script.requests_for("gpt-4.1-mini")[-1].body


def test_concrete_model_bypasses_routing(gateway: str, standin: StandInServer) -> None:
    raw = sdk(gateway).chat.completions.with_raw_response.create(model="gpt-4.1", messages=USER)
    assert raw.headers["x-turnout-model"] == "primary/gpt-4.1"
    assert raw.headers["x-turnout-route"].startswith("gpt-4.1; pattern=direct")


def test_models_endpoint_lists_routes_and_models(gateway: str) -> None:
    ids = {m.id for m in sdk(gateway).models.list()}
    assert {"auto", "gpt-4.1-mini", "gpt-4.1", "backup-mini"} <= ids


def test_health_and_readiness(gateway: str) -> None:
    assert httpx.get(f"{gateway}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{gateway}/readyz")
    assert ready.status_code == 200 and ready.json()["deployments"]["primary/gpt-4.1"] == "closed"


@pytest.mark.parametrize(
    ("error", "status"),
    [(openai.NotFoundError, 404)],
)
def test_unknown_route_is_model_not_found(
    gateway: str, error: type[Exception], status: int
) -> None:
    with pytest.raises(error) as info:
        sdk(gateway).chat.completions.create(model="no-such-route", messages=USER)
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert info.value.body["code"] == "model_not_found"  # type: ignore[attr-defined]
    assert "auto" in info.value.body["message"]  # type: ignore[attr-defined]
