"""Anthropic's request and response translation, without HTTP."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from turnout.core import (
    InvalidImageError,
    InvalidInputError,
    UnsupportedMediaError,
    UpstreamBadResponse,
    Usage,
)
from turnout.providers._anthropic_format import (
    REFUSED,
    AnthropicStream,
    anthropic_request,
    completion_from_anthropic,
    usage_from_anthropic,
)

from .calls import chat


def translate(**fields: Any) -> dict[str, Any]:
    return anthropic_request(chat("c", **fields), "claude-x")


def test_minimal_request() -> None:
    body = translate(messages=[{"role": "user", "content": "Hi"}])
    assert body == {
        "model": "claude-x",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }
    assert anthropic_request(chat("c"), "claude-x", default_max_tokens=99)["max_tokens"] == 99


def test_system_developer_and_json_instructions_join_the_system_prompt() -> None:
    body = translate(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Use metric."},
            {"role": "user", "content": "Weather?"},
        ],
        response_format={"type": "json_object"},
    )
    system = body["system"].split("\n\n")
    assert system[:2] == ["Be brief.", "Use metric."]
    assert "single JSON object" in system[2]
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_sampling_fields() -> None:
    body = translate(temperature=0.3, top_p=0.5, stop="END", max_tokens=12, seed=1, user="u")
    assert (body["temperature"], body["top_p"], body["stop_sequences"]) == (0.3, 0.5, ["END"])
    assert body["max_tokens"] == 12 and body["metadata"] == {"user_id": "u"}
    assert "seed" not in body  # Anthropic has no seed
    assert translate(temperature=2.0)["temperature"] == 1.0


def test_content_blocks() -> None:
    content = [
        {"type": "text", "text": ""},
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
    ]
    blocks = translate(messages=[{"role": "user", "content": content}])["messages"][0]["content"]
    assert blocks == [
        {"type": "text", "text": "Compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/b.png"}},
    ]


@pytest.mark.parametrize(
    ("part", "error"),
    [
        (
            {"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}},
            UnsupportedMediaError,
        ),
        ({"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}, InvalidImageError),
        ({"type": "image_url", "image_url": {"url": "data:image/png,raw"}}, InvalidImageError),
    ],
)
def test_unsendable_parts(part: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        translate(messages=[{"role": "user", "content": [part]}])


def test_tool_history() -> None:
    calls = [
        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
        {"id": "t2", "type": "function", "function": {"name": "g", "arguments": ""}},
    ]
    body = translate(
        messages=[
            {"role": "user", "content": "Go"},
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "t1", "content": "one"},
            {"role": "tool", "tool_call_id": "t2", "content": "two"},
        ]
    )
    assistant, results = body["messages"][1:]
    assert assistant["content"] == [
        {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
        {"type": "tool_use", "id": "t2", "name": "g", "input": {}},
    ]
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "one"},
            {"type": "tool_result", "tool_use_id": "t2", "content": "two"},
        ],
    }


@pytest.mark.parametrize(
    "message",
    [
        {"role": "tool", "content": "orphan"},
        {"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]},
        {
            "role": "assistant",
            "tool_calls": [{"id": "t", "function": {"name": "f", "arguments": "1"}}],
        },
    ],
)
def test_bad_tool_history(message: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        translate(messages=[{"role": "user", "content": "Go"}, message])


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (None, None, {"type": "auto"}),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", None, {"type": "any"}),
        ("none", False, {"type": "none"}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
    ],
)
def test_tools_and_choice(choice: Any, parallel: bool | None, expected: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": {"name": "f", "description": "does f"}}]
    body = translate(tools=tools, tool_choice=choice, parallel_tool_calls=parallel)
    assert body["tools"] == [
        {"name": "f", "description": "does f", "input_schema": {"type": "object", "properties": {}}}
    ]
    assert body["tool_choice"] == expected


def test_usage() -> None:
    raw = {
        "input_tokens": 10,
        "cache_read_input_tokens": 50,
        "cache_creation_input_tokens": 5,
        "output_tokens": 7,
    }
    assert usage_from_anthropic(raw) == Usage(
        text_input_tokens=65, cached_input_tokens=50, output_tokens=7
    )
    assert usage_from_anthropic(None) == Usage()


def message(content: list[dict[str, Any]], stop: str = "end_turn") -> dict[str, Any]:
    return {
        "type": "message",
        "content": content,
        "stop_reason": stop,
        "usage": {"input_tokens": 3, "output_tokens": 4},
    }


def test_completion() -> None:
    done = completion_from_anthropic(
        "a",
        message(
            [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Sure, "},
                {"type": "text", "text": "checking."},
                {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": [1]}},
            ],
            "tool_use",
        ),
        "claude-x",
    )
    assert done.content == "Sure, checking." and done.finish_reason == "tool_calls"
    [tool_call] = done.tool_calls or []
    assert tool_call["id"] == "t1" and orjson.loads(tool_call["function"]["arguments"]) == {
        "a": [1]
    }
    assert done.body["usage"]["prompt_tokens"] == 3 and done.body["model"] == "claude-x"
    assert done.refusal is None and done.image_tokens_reported is False


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons(stop: str, finish: str) -> None:
    done = completion_from_anthropic("a", message([{"type": "text", "text": "x"}], stop), "m")
    assert done.finish_reason == finish


def test_refusal_without_text_still_says_why() -> None:
    done = completion_from_anthropic("a", message([], "refusal"), "m")
    assert (done.content, done.refusal) == ("", REFUSED)


@pytest.mark.parametrize("data", [{"content": "text"}, [], {"content": ["x"]}])
def test_malformed(data: Any) -> None:
    with pytest.raises(UpstreamBadResponse):
        completion_from_anthropic("a", data, "m")


def test_stream_translation() -> None:
    events = [
        {
            "type": "message_start",
            "message": {
                "usage": {"input_tokens": 9, "cache_read_input_tokens": 1, "output_tokens": 1}
            },
        },
        {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "x"},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"a"'},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": ": 2}"},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 15},
        },
        {"type": "a_future_event"},
    ]
    folded = AnthropicStream("a", "m")
    chunks = [chunk for event in events for chunk in folded.feed(event)]
    assert not folded.stopped
    assert folded.feed({"type": "message_stop"}) == [] and folded.stopped
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert [d["content"] for d in deltas[1:] if "content" in d] == ["Hi"]
    pieces = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert pieces[0]["id"] == "t1" and pieces[0]["function"] == {"name": "f", "arguments": ""}
    assert "".join(p["function"]["arguments"] for p in pieces) == '{"a": 2}'
    assert {p["index"] for p in pieces} == {0}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls" == folded.finish
    assert folded.usage == Usage(text_input_tokens=10, cached_input_tokens=1, output_tokens=15)


def test_stream_json_for_no_tool_block_is_malformed() -> None:
    delta = {"type": "input_json_delta", "partial_json": "{}"}
    with pytest.raises(UpstreamBadResponse):
        AnthropicStream("a", "m").feed({"type": "content_block_delta", "index": 4, "delta": delta})
