"""The Anthropic adapter over real HTTP against the stand-in's Messages wire format."""

from __future__ import annotations

from functools import partial
from typing import Any

import orjson
import pytest

from turnout.core import (
    ProviderError,
    UnsupportedMediaError,
    UpstreamBadResponse,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from turnout.providers import Anthropic, Delta
from turnout.providers.standin import Reply, StandInServer
from turnout.providers.standin._script import default_answer

from .calls import (
    PNG_DATA_URI,
    call,
    chat,
    complete,
    stream,
    stream_end,
    streamed_text,
    streamed_tool_calls,
)
from .side_host import SideHost

PROMPT = "Describe the weather in Paris"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
WEATHER_CALL = {
    "id": "toolu_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris", "days": [1, 2]}'},
}


def anthropic(upstream: StandInServer, **kw: Any) -> partial[Anthropic]:
    return partial(Anthropic, "ant", upstream.url, "k-ant", **kw)


def sent(upstream: StandInServer) -> Any:
    [received] = upstream.script.received
    return received.body


def test_plain_answer(upstream: StandInServer) -> None:
    request = chat("claude-x", temperature=1.5, top_p=0.9, stop=["END", "STOP"], user="u-1")
    done = complete(anthropic(upstream), call(request))
    assert done.content == default_answer("claude-x", PROMPT)
    assert done.finish_reason == "stop" and done.refusal is None
    assert done.body["choices"][0]["message"]["content"] == done.content
    [received] = upstream.script.received
    assert received.path == "/v1/messages"
    assert received.headers["x-api-key"] == "k-ant"
    assert received.headers["anthropic-version"] == "2023-06-01"
    assert received.body == {
        "model": "claude-x",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
        "system": "Be brief.",
        "temperature": 1.0,
        "top_p": 0.9,
        "stop_sequences": ["END", "STOP"],
        "metadata": {"user_id": "u-1"},
    }


def test_output_limit_from_request_or_configured_default(upstream: StandInServer) -> None:
    complete(anthropic(upstream), call(chat("claude-x", max_completion_tokens=77)))
    assert sent(upstream)["max_tokens"] == 77
    upstream.script.reset()
    complete(anthropic(upstream, default_max_tokens=1000), call(chat("claude-x")))
    assert sent(upstream)["max_tokens"] == 1000


def test_usage_counts_cache_reads_as_input(upstream: StandInServer) -> None:
    upstream.script.push(
        "claude-x", Reply(prompt_tokens=100, cached_tokens=30, completion_tokens=9)
    )
    done = complete(anthropic(upstream), call(chat("claude-x")))
    assert done.usage.text_input_tokens == 100
    assert done.usage.cached_input_tokens == 30
    assert done.usage.image_input_tokens == 0 and done.image_tokens_reported is False
    assert done.usage.output_tokens == 9
    assert done.body["usage"]["prompt_tokens"] == 100


def test_image_parts(upstream: StandInServer, side_host: SideHost) -> None:
    parts = [
        {"type": "text", "text": "Which is brighter?"},
        {"type": "image_url", "image_url": {"url": PNG_DATA_URI}},
        {"type": "image_url", "image_url": {"url": f"{side_host.url}/cat.png"}},
    ]
    complete(
        anthropic(upstream), call(chat("claude-x", messages=[{"role": "user", "content": parts}]))
    )
    blocks = sent(upstream)["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG_DATA_URI[22:]},
    }
    assert blocks[2] == {
        "type": "image",
        "source": {"type": "url", "url": f"{side_host.url}/cat.png"},
    }


def test_audio_is_refused_before_any_call(upstream: StandInServer) -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    request = chat("claude-x", messages=[{"role": "user", "content": [audio]}])
    with pytest.raises(UnsupportedMediaError, match="audio"):
        complete(anthropic(upstream), call(request))
    assert not upstream.script.received


def test_tools_round_trip(upstream: StandInServer) -> None:
    upstream.script.push("claude-x", Reply(tool_calls=[WEATHER_CALL], finish_reason="tool_calls"))
    request = chat("claude-x", tools=[WEATHER_TOOL], tool_choice="required")
    done = complete(anthropic(upstream), call(request))
    assert done.finish_reason == "tool_calls"
    [tool_call] = done.tool_calls or []
    assert tool_call["id"] == "toolu_1" and tool_call["function"]["name"] == "get_weather"
    assert orjson.loads(tool_call["function"]["arguments"]) == {"city": "Paris", "days": [1, 2]}
    body = sent(upstream)
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
        }
    ]
    assert body["tool_choice"] == {"type": "any"}

    upstream.script.reset()
    follow_up = chat(
        "claude-x",
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": "Checking.", "tool_calls": [tool_call]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": '{"temp_c": 18}'},
            {"role": "user", "content": "And tomorrow?"},
        ],
    )
    complete(anthropic(upstream), call(follow_up))
    messages = sent(upstream)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [
        {"type": "text", "text": "Checking."},
        {
            "type": "tool_use",
            "id": "toolu_1",
            "name": "get_weather",
            "input": {"city": "Paris", "days": [1, 2]},
        },
    ]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"temp_c": 18}'},
        {"type": "text", "text": "And tomorrow?"},
    ]


def test_json_schema_becomes_a_system_instruction(upstream: StandInServer) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    request = chat(
        "claude-x",
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
    )
    complete(anthropic(upstream), call(request))
    system = sent(upstream)["system"]
    assert system.startswith("Be brief.\n\n")
    assert orjson.dumps(schema).decode() in system


def test_refusal(upstream: StandInServer) -> None:
    upstream.script.push("claude-x", Reply(refusal="I can't help with that."))
    done = complete(anthropic(upstream), call(chat("claude-x")))
    assert done.finish_reason == "content_filter"
    assert done.refusal == "I can't help with that."
    assert done.body["choices"][0]["message"]["refusal"] == done.refusal


def test_stream(upstream: StandInServer) -> None:
    upstream.script.push("claude-x", Reply(prompt_tokens=40, cached_tokens=8, completion_tokens=12))
    events = stream(anthropic(upstream), call(chat("claude-x")))
    first = events[0]
    assert isinstance(first, Delta)
    assert first.chunk["choices"][0]["delta"]["role"] == "assistant"
    assert streamed_text(events) == default_answer("claude-x", PROMPT)
    end = stream_end(events)
    assert end.finish_reason == "stop"
    assert (end.usage.text_input_tokens, end.usage.cached_input_tokens) == (40, 8)
    assert end.usage.output_tokens == 12
    assert sent(upstream)["stream"] is True


def test_stream_tool_calls_join_partial_json(upstream: StandInServer) -> None:
    second = {**WEATHER_CALL, "id": "toolu_2", "function": {"name": "get_time", "arguments": "{}"}}
    upstream.script.push(
        "claude-x",
        Reply(
            content="Let me look.", tool_calls=[WEATHER_CALL, second], finish_reason="tool_calls"
        ),
    )
    events = stream(anthropic(upstream), call(chat("claude-x", tools=[WEATHER_TOOL])))
    assert streamed_text(events) == "Let me look."
    calls = streamed_tool_calls(events)
    assert [(c["id"], c["name"]) for c in calls] == [
        ("toolu_1", "get_weather"),
        ("toolu_2", "get_time"),
    ]
    assert orjson.loads(calls[0]["arguments"]) == {"city": "Paris", "days": [1, 2]}
    assert orjson.loads(calls[1]["arguments"]) == {}
    assert stream_end(events).finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(status=429, retry_after=2), UpstreamRateLimited),
        (Reply(status=500), UpstreamUnavailable),
        (Reply(status=503), UpstreamUnavailable),
        (Reply(status=529), UpstreamUnavailable),
        (Reply(status=400), UpstreamRejected),
        (Reply(status=401), UpstreamRejected),
        (Reply(status=413), UpstreamRejected),
        (Reply(status=400, error_type="rate_limit_error"), UpstreamRateLimited),  # body wins
        (Reply(delay=1.0), UpstreamTimeout),
        (Reply(malformed=True), UpstreamBadResponse),
    ],
)
def test_errors(upstream: StandInServer, reply: Reply, error: type[ProviderError]) -> None:
    upstream.script.push("claude-x", reply)
    with pytest.raises(ProviderError) as caught:
        complete(anthropic(upstream), call(chat("claude-x"), timeout=0.3))
    assert type(caught.value) is error
    assert caught.value.provider == "ant"
    if reply.retry_after is not None:
        assert caught.value.retry_after == reply.retry_after
    if reply.status != 200:
        assert caught.value.status == reply.status


@pytest.mark.parametrize(
    ("reply", "error", "code"),
    [
        (Reply(drop_after=3), UpstreamUnavailable, None),
        (Reply(status=529, drop_after=3), UpstreamUnavailable, "overloaded_error"),
        (Reply(status=429, drop_after=1), UpstreamRateLimited, "rate_limit_error"),
        (Reply(malformed=True), UpstreamBadResponse, None),
        (Reply(status=401), UpstreamRejected, "authentication_error"),
    ],
)
def test_stream_errors(
    upstream: StandInServer, reply: Reply, error: type[ProviderError], code: str | None
) -> None:
    upstream.script.push("claude-x", reply)
    with pytest.raises(ProviderError) as caught:
        stream(anthropic(upstream), call(chat("claude-x")))
    assert type(caught.value) is error
    assert caught.value.code == code


def test_stream_without_message_stop_is_dropped(side_host: SideHost) -> None:
    with pytest.raises(UpstreamUnavailable, match="message_stop"):
        stream(partial(Anthropic, "ant", side_host.url), call(chat("claude-x")))
