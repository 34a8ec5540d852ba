"""The same calls through each adapter, against the stand-in speaking each wire format,
give the same normalised results: content, finish_reason, tool calls and error classes.

A difference here means one adapter (or one stand-in format) reads the world differently
from the others, which is exactly what the gateway's cascade must never see.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from turnout.core import ChatRequest, ProviderError
from turnout.providers import Anthropic, Gemini, OpenAICompatible, Provider
from turnout.providers.standin import Reply, StandInServer

from .calls import call, chat, complete, stream, stream_end, streamed_text, streamed_tool_calls

MODEL = "same-model"
ADAPTERS: dict[str, Callable[[str], Provider]] = {
    "openai": lambda url: OpenAICompatible("up", url + "/v1", "k"),
    "gemini": lambda url: Gemini("up", url, "k"),
    "anthropic": lambda url: Anthropic("up", url, "k"),
}
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}
CALLS = [
    {
        "id": "call_a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
    },
    {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
]


def each_adapter(
    upstream: StandInServer, replies: list[Reply], run: Callable[[Callable[[], Provider]], Any]
) -> dict[str, Any]:
    """`run` once per adapter, each time against a fresh copy of the same script."""
    results = {}
    for kind, build in ADAPTERS.items():
        upstream.script.reset()
        upstream.script.push(MODEL, *(Reply(**r.to_dict()) for r in replies))
        results[kind] = run(lambda build=build: build(upstream.url))  # type: ignore[misc]
    return results


def outcome(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except ProviderError as exc:
        return (type(exc).__name__, exc.retry_after)


def assert_congruent(results: dict[str, Any]) -> Any:
    first = next(iter(results.values()))
    assert all(r == first for r in results.values()), results
    return first


def request(**fields: Any) -> ChatRequest:
    return chat(MODEL, "What is the capital of Norway, and why?", **fields)


@pytest.mark.parametrize("finish", ["stop", "length"])
def test_answers_agree(upstream: StandInServer, finish: str) -> None:
    def run(make: Callable[[], Provider]) -> Any:
        done = complete(make, call(request()))
        events = stream(make, call(request()))
        end = stream_end(events)
        return done.content, done.finish_reason, streamed_text(events), end.finish_reason

    replies = [Reply(finish_reason=finish), Reply(finish_reason=finish)]
    content, finish_reason, streamed, stream_finish = assert_congruent(
        each_adapter(upstream, replies, run)
    )
    assert content and content == streamed
    assert finish_reason == stream_finish == finish


def test_output_tokens_agree(upstream: StandInServer) -> None:
    def run(make: Callable[[], Provider]) -> Any:
        done = complete(make, call(request()))
        end = stream_end(stream(make, call(request())))
        return done.usage.output_tokens, end.usage.output_tokens, done.usage.input_tokens > 0

    replies = [Reply(completion_tokens=21), Reply(completion_tokens=21)]
    assert assert_congruent(each_adapter(upstream, replies, run)) == (21, 21, True)


def test_tool_calls_agree(upstream: StandInServer) -> None:
    def run(make: Callable[[], Provider]) -> Any:
        tools_request = request(tools=[WEATHER_TOOL])
        done = complete(make, call(tools_request))
        events = stream(make, call(tools_request))
        whole = [
            (c["function"]["name"], orjson.loads(c["function"]["arguments"]))
            for c in done.tool_calls or ()
        ]
        streamed = [(c["name"], orjson.loads(c["arguments"])) for c in streamed_tool_calls(events)]
        finishes = done.finish_reason, stream_end(events).finish_reason
        return done.content, whole, streamed, *finishes

    reply = Reply(tool_calls=CALLS, finish_reason="tool_calls")
    content, whole, streamed, finish, stream_finish = assert_congruent(
        each_adapter(upstream, [reply, Reply(**reply.to_dict())], run)
    )
    assert content is None
    assert whole == streamed == [("get_weather", {"city": "Oslo"}), ("get_time", {})]
    assert finish == stream_finish == "tool_calls"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(status=429, retry_after=3), ("UpstreamRateLimited", 3.0)),
        (Reply(status=500), ("UpstreamUnavailable", None)),
        (Reply(status=503), ("UpstreamUnavailable", None)),
        (Reply(status=529), ("UpstreamUnavailable", None)),
        (Reply(status=400), ("UpstreamRejected", None)),
        (Reply(status=401), ("UpstreamRejected", None)),
        (Reply(status=404), ("UpstreamRejected", None)),
        (Reply(status=401, error_type="invalid_request_error"), ("UpstreamRejected", None)),
        (Reply(delay=1.0), ("UpstreamTimeout", None)),
        (Reply(malformed=True), ("UpstreamBadResponse", None)),
    ],
)
def test_complete_failures_agree(upstream: StandInServer, reply: Reply, expected: Any) -> None:
    def run(make: Callable[[], Provider]) -> Any:
        return outcome(lambda: complete(make, call(request(), timeout=0.3)))

    assert assert_congruent(each_adapter(upstream, [reply], run)) == expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(drop_after=2), ("UpstreamUnavailable", None)),
        (Reply(status=429, retry_after=1), ("UpstreamRateLimited", 1.0)),
        (Reply(status=503), ("UpstreamUnavailable", None)),
        (Reply(status=400), ("UpstreamRejected", None)),
        (Reply(delay=1.0), ("UpstreamTimeout", None)),
    ],
)
def test_stream_failures_agree(upstream: StandInServer, reply: Reply, expected: Any) -> None:
    def run(make: Callable[[], Provider]) -> Any:
        return outcome(lambda: stream(make, call(request(), timeout=0.3)))

    assert assert_congruent(each_adapter(upstream, [reply], run)) == expected
