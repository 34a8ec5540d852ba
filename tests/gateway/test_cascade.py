"""Escalation on the answer, failover on errors: each trigger against the stand-in."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from turnout.providers.standin import Reply, StandInServer

from .harness import route_settings, running_gateway, sdk

USER = [{"role": "user", "content": "Where is the capital of Norway?"}]


def _ask(gateway: str, **kwargs: Any) -> Any:
    return sdk(gateway).chat.completions.with_raw_response.create(
        model=kwargs.pop("model", "auto"), messages=kwargs.pop("messages", USER), **kwargs
    )


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(content=""), "empty"),
        (Reply(content="   \n"), "empty"),
        (Reply(content="", refusal="I won't do that."), "refusal"),
        (Reply(content="I'm sorry, but I can't help with that."), "refusal"),
        (Reply(content="The capital is", finish_reason="length"), "truncated"),
        (Reply(content="blocked", finish_reason="content_filter"), "refusal"),
    ],
)
def test_escalates_on_the_answer(
    gateway: str, standin: StandInServer, reply: Reply, reason: str
) -> None:
    standin.script.push("gpt-4.1-mini", reply)
    raw = _ask(gateway)
    assert raw.headers["x-turnout-route"] == "auto; pattern=direct; tier=strong"
    assert raw.headers["x-turnout-attempts"] == "2"
    assert raw.headers["x-turnout-attempt-log"] == (
        f"cheap primary/gpt-4.1-mini {reason}; strong primary/gpt-4.1 ok"
    )
    assert raw.parse().choices[0].message.content.startswith("Simulated answer from gpt-4.1")


def test_both_attempts_are_paid_for(gateway: str, standin: StandInServer) -> None:
    standin.script.push("gpt-4.1-mini", Reply(content="", prompt_tokens=1000, completion_tokens=1))
    standin.script.push("gpt-4.1", Reply(content="Oslo", prompt_tokens=1000, completion_tokens=10))
    raw = _ask(gateway)
    # gpt-4.1-mini: 1000 x $0.40 + 1 x $1.60; gpt-4.1: 1000 x $2.00 + 10 x $8.00 (per million).
    assert raw.headers["x-turnout-cost-usd"] == "0.002482"


def test_length_with_a_caller_cap_is_not_escalated(gateway: str, standin: StandInServer) -> None:
    standin.script.push("gpt-4.1-mini", Reply(content="The capital", finish_reason="length"))
    raw = _ask(gateway, max_tokens=3)
    assert raw.headers["x-turnout-attempts"] == "1"
    assert raw.parse().choices[0].finish_reason == "length"


def test_json_object_that_is_not_json_escalates(gateway: str, standin: StandInServer) -> None:
    standin.script.push("gpt-4.1-mini", Reply(content="Sure! Here it is: {city: Oslo}"))
    standin.script.push("gpt-4.1", Reply(content='{"city": "Oslo"}'))
    raw = _ask(gateway, response_format={"type": "json_object"})
    assert raw.headers["x-turnout-attempt-log"].startswith(
        "cheap primary/gpt-4.1-mini invalid_json"
    )


def test_json_schema_mismatch_escalates_even_from_strong_start(upstream: StandInServer) -> None:
    settings = route_settings(upstream.url)
    settings["routes"]["auto"]["rules"] = []  # start cheap even with a schema
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    with running_gateway(settings) as url:
        upstream.script.reset()
        upstream.script.push("gpt-4.1-mini", Reply(content='{"n": "seven"}'))
        upstream.script.push("gpt-4.1", Reply(content='{"n": 7}'))
        raw = _ask(
            url,
            response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
        )
        assert raw.headers["x-turnout-attempt-log"] == (
            "cheap primary/gpt-4.1-mini schema_mismatch:n; strong primary/gpt-4.1 ok"
        )


@pytest.fixture(scope="module")
def checked_gateway(upstream: StandInServer) -> Iterator[str]:
    settings = route_settings(upstream.url)
    settings["routes"]["regex"] = {
        **settings["routes"]["auto"],
        "require": [{"regex": r"\bOslo\b"}],
    }
    settings["routes"]["python"] = {
        **settings["routes"]["auto"],
        "require": [{"python": "tests.gateway.checks_for_tests:mentions_oslo"}],
    }
    with running_gateway(settings) as url:
        yield url


@pytest.mark.parametrize(
    ("route", "reason"), [("regex", "regex_mismatch"), ("python", "check:mentions_oslo:no Oslo")]
)
def test_caller_supplied_checks(
    checked_gateway: str, standin: StandInServer, route: str, reason: str
) -> None:
    standin.script.push("gpt-4.1-mini", Reply(content="It is Bergen."))
    standin.script.push("gpt-4.1", Reply(content="It is Oslo."))
    raw = _ask(checked_gateway, model=route)
    assert (
        raw.headers["x-turnout-attempt-log"]
        == f"cheap primary/gpt-4.1-mini {reason}; strong primary/gpt-4.1 ok"
    )
    assert raw.parse().choices[0].message.content == "It is Oslo."


def test_last_tier_failing_a_check_is_still_answered(gateway: str, standin: StandInServer) -> None:
    standin.script.push("gpt-4.1-mini", Reply(content=""))
    standin.script.push("gpt-4.1", Reply(content=""))
    raw = _ask(gateway)
    assert raw.headers["x-turnout-check-failed"] == "empty"
    assert raw.headers["x-turnout-attempt-log"].endswith("strong primary/gpt-4.1 empty")


def test_transport_failure_retries_then_falls_back_to_another_provider(
    gateway: str, standin: StandInServer
) -> None:
    standin.script.push("gpt-4.1-mini", Reply(status=503, times=2))
    raw = _ask(gateway)
    assert raw.headers["x-turnout-model"] == "backup/backup-mini"
    assert raw.headers["x-turnout-route"].endswith("tier=cheap")
    assert raw.headers["x-turnout-attempt-log"] == (
        "cheap primary/gpt-4.1-mini UpstreamUnavailable; "
        "cheap primary/gpt-4.1-mini UpstreamUnavailable; "
        "cheap backup/backup-mini ok"
    )
    keys = [r.headers["authorization"] for r in standin.script.received]
    assert keys == ["Bearer sk-primary", "Bearer sk-primary", "Bearer sk-backup"]


def test_rejected_request_is_not_retried(gateway: str, standin: StandInServer) -> None:
    standin.script.push("gpt-4.1-mini", Reply(status=400, error_type="invalid_request_error"))
    raw = _ask(gateway)
    assert (
        raw.headers["x-turnout-attempt-log"].split("; ")[0]
        == "cheap primary/gpt-4.1-mini UpstreamRejected"
    )
    assert len(standin.script.requests_for("gpt-4.1-mini")) == 1


def test_retry_honours_retry_after(upstream: StandInServer) -> None:
    settings = route_settings(upstream.url)
    settings["providers"]["primary"]["retry"] = {
        "attempts": 1,
        "base_delay_s": 0.0,
        "max_delay_s": 5,
    }
    with running_gateway(settings) as url:
        upstream.script.reset()
        upstream.script.push("gpt-4.1-mini", Reply(status=429, retry_after=0.6))
        started = time.monotonic()
        raw = _ask(url)
        elapsed = time.monotonic() - started
        assert raw.headers["x-turnout-attempt-log"] == (
            "cheap primary/gpt-4.1-mini UpstreamRateLimited; cheap primary/gpt-4.1-mini ok"
        )
        assert elapsed >= 0.6


def test_timeout_escalates_then_times_out_as_504(upstream: StandInServer) -> None:
    settings = route_settings(upstream.url)
    for provider in settings["providers"].values():
        provider["timeout_s"] = 0.3
        provider["retry"] = {"attempts": 0}
    with running_gateway(settings) as url:
        upstream.script.reset()
        upstream.script.push("gpt-4.1-mini", Reply(delay=1.0))
        raw = _ask(url)
        assert raw.headers["x-turnout-attempt-log"].startswith(
            "cheap primary/gpt-4.1-mini UpstreamTimeout"
        )
        for model in ("gpt-4.1-mini", "backup-mini", "gpt-4.1"):
            upstream.script.push(model, Reply(delay=1.0, times=None))
        with pytest.raises(openai.APIStatusError) as info:
            _ask(url)
        assert info.value.status_code == 504
        assert info.value.body["code"] == "upstream_timeout"  # type: ignore[index]
        assert info.value.response.headers["x-turnout-attempts"] == "3"
    upstream.script.reset()


def test_overall_deadline(upstream: StandInServer) -> None:
    settings = route_settings(upstream.url, gateway={"deadline_s": 0.5})
    with running_gateway(settings) as url:
        upstream.script.reset()
        upstream.script.push("gpt-4.1-mini", Reply(delay=2.0))
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as info:
            _ask(url)
        assert info.value.status_code == 504
        assert time.monotonic() - started < 1.5
    upstream.script.reset()


def test_malformed_upstream_body_falls_back(gateway: str, standin: StandInServer) -> None:
    standin.script.push("gpt-4.1-mini", Reply(malformed=True, times=2))
    raw = _ask(gateway)
    assert raw.headers["x-turnout-model"] == "backup/backup-mini"
    assert "UpstreamBadResponse" in raw.headers["x-turnout-attempt-log"]


def test_circuit_breaker_opens_and_probes(upstream: StandInServer) -> None:
    settings = route_settings(upstream.url)
    settings["providers"]["primary"]["circuit"] = {"failures": 2, "window_s": 30, "cooldown_s": 0.5}
    settings["providers"]["primary"]["retry"] = {"attempts": 0}
    with running_gateway(settings) as url:
        upstream.script.reset()
        upstream.script.push("gpt-4.1-mini", Reply(status=500, times=2))
        _ask(url)
        _ask(url)  # two failures: the breaker opens
        raw = _ask(url)
        assert raw.headers["x-turnout-attempt-log"].startswith(
            "cheap primary/gpt-4.1-mini circuit_open"
        )
        assert raw.headers["x-turnout-model"] == "backup/backup-mini"
        assert httpx.get(f"{url}/readyz").json()["deployments"]["primary/gpt-4.1-mini"] == "open"
        time.sleep(0.6)  # cooldown: one probe is let through and succeeds
        raw = _ask(url)
        assert raw.headers["x-turnout-model"] == "primary/gpt-4.1-mini"
        assert httpx.get(f"{url}/readyz").json()["deployments"]["primary/gpt-4.1-mini"] == "closed"
    upstream.script.reset()


def test_stream_escalates_before_first_byte(gateway: str, standin: StandInServer) -> None:
    standin.script.push("gpt-4.1-mini", Reply(content=""))
    with httpx.stream(
        "POST",
        f"{gateway}/v1/chat/completions",
        json={"model": "auto", "messages": USER, "stream": True},
    ) as r:
        body = r.read().decode()
        assert r.headers["x-turnout-route"].endswith("tier=strong")
        assert r.headers["x-turnout-attempt-log"].startswith("cheap primary/gpt-4.1-mini empty")
    text = "".join(
        (c.get("delta") or {}).get("content") or ""
        for line in body.splitlines()
        if line.startswith("data: {")
        for c in json.loads(line[6:])["choices"]
    )
    assert text == "Simulated answer from gpt-4.1 to: Where is the capital of Norway?"


def test_stream_error_before_first_byte_fails_over(gateway: str, standin: StandInServer) -> None:
    standin.script.push("gpt-4.1-mini", Reply(status=503, times=2))
    chunks = list(sdk(gateway).chat.completions.create(model="auto", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith(
        "Simulated answer from backup-mini"
    )


def test_stream_dropped_after_first_byte_ends_with_an_error(
    gateway: str, standin: StandInServer
) -> None:
    standin.script.push("gpt-4.1-mini", Reply(drop_after=3))
    stream = sdk(gateway).chat.completions.create(model="auto", messages=USER, stream=True)
    got = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            got.append(chunk)
    assert got, "the first chunks reached the client before the drop"
    assert "connection failed" in str(info.value)
    assert len(standin.script.requests_for("gpt-4.1")) == 0  # no escalation once bytes were sent
