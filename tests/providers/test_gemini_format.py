"""Gemini's request and response translation, without HTTP."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from turnout.core import InvalidImageError, InvalidInputError, UpstreamBadResponse, Usage
from turnout.providers._gemini import retry_delay
from turnout.providers._gemini_request import (
    InlineData,
    gemini_request,
    remote_image_urls,
)
from turnout.providers._gemini_response import (
    GeminiStream,
    completion_from_gemini,
    usage_from_gemini,
)
from turnout.providers._media import split_data_uri

from .calls import chat


def translate(fetched: dict[str, InlineData] | None = None, **fields: Any) -> dict[str, Any]:
    return gemini_request(chat("g", **fields), fetched or {})


def image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def test_system_and_developer_messages_become_the_system_instruction() -> None:
    body = translate(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Weather?"},
        ]
    )
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Use metric."}]}
    assert [(c["role"], c["parts"]) for c in body["contents"]] == [
        ("user", [{"text": "Hi"}]),
        ("model", [{"text": "Hello"}]),
        ("user", [{"text": "Weather?"}]),
    ]
    assert "generationConfig" not in body and "tools" not in body


def test_parallel_tool_results_share_one_turn_and_find_their_function_names() -> None:
    calls = [
        {"id": "a", "type": "function", "function": {"name": "weather", "arguments": '{"c": 1}'}},
        {
            "id": "b",
            "type": "function",
            "function": {"name": "clock", "arguments": ""},
            "extra_content": {"google": {"thought_signature": "sig=="}},
        },
    ]
    body = translate(
        messages=[
            {"role": "user", "content": "Weather and time?"},
            {"role": "assistant", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "a", "content": '{"temp": 18}'},
            {"role": "tool", "tool_call_id": "b", "content": "noon"},
        ]
    )
    model, results = body["contents"][1:]
    assert model["parts"] == [
        {"functionCall": {"name": "weather", "args": {"c": 1}}},
        {"functionCall": {"name": "clock", "args": {}}, "thoughtSignature": "sig=="},
    ]
    assert results == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "weather", "response": {"temp": 18}}},
            {"functionResponse": {"name": "clock", "response": {"output": "noon"}}},
        ],
    }


@pytest.mark.parametrize(
    ("messages", "words"),
    [
        ([{"role": "tool", "tool_call_id": "zz", "content": "x"}], "matches no earlier"),
        (
            [
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "[1]"}}],
                }
            ],
            "must be a JSON object",
        ),
        (
            [
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{"}}],
                }
            ],
            "is not JSON",
        ),
    ],
)
def test_bad_tool_history_is_the_callers(messages: list[dict[str, Any]], words: str) -> None:
    with pytest.raises(InvalidInputError, match=words):
        translate(messages=[{"role": "user", "content": "hi"}, *messages])


def test_media_parts() -> None:
    remote = "https://example.com/cat.jpg"
    fetched = {remote: InlineData("image/jpeg", "anBn")}
    content = [
        {"type": "text", "text": "Look and listen"},
        image("data:image/webp;base64,UklGRg=="),
        image(remote),
        {"type": "input_audio", "input_audio": {"data": "AAA=", "format": "mp3"}},
    ]
    body = translate(fetched, messages=[{"role": "user", "content": content}])
    assert body["contents"][0]["parts"][1:] == [
        {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "image/jpeg", "data": "anBn"}},
        {"inlineData": {"mimeType": "audio/mpeg", "data": "AAA="}},
    ]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("data:image/png,rawbytes", "base64"),
        ("data:text/plain;base64,aGk=", "media type 'text/plain'"),
        ("ftp://example.com/cat.png", "data: URI or an http"),
        ("https://example.com/unfetched.png", "not fetched"),
    ],
)
def test_bad_image_urls(url: str, words: str) -> None:
    with pytest.raises(InvalidImageError, match=words):
        translate(messages=[{"role": "user", "content": [image(url)]}])


def test_remote_image_urls_are_listed_once() -> None:
    a, b = "https://x/a.png", "http://x/b.png"
    request = chat(
        "g",
        messages=[
            {"role": "user", "content": [image(a), image("data:image/png;base64,AA=="), image(b)]},
            {"role": "user", "content": [image(a)]},
        ],
    )
    assert remote_image_urls(request) == [a, b]
    assert split_data_uri("https://x/a.png") is None
    assert split_data_uri("data:IMAGE/PNG;base64,AA==") == ("image/png", "AA==")


def test_generation_config() -> None:
    config = translate(
        max_tokens=10,
        max_completion_tokens=20,
        stop=["a", "b"],
        response_format={"type": "json_object"},
    )["generationConfig"]
    assert config == {
        "maxOutputTokens": 20,
        "stopSequences": ["a", "b"],
        "responseMimeType": "application/json",
    }


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "f"}},
            {"mode": "ANY", "allowedFunctionNames": ["f"]},
        ),
    ],
)
def test_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    body = translate(tools=tools, tool_choice=choice)
    assert body["tools"] == [{"functionDeclarations": [{"name": "f"}]}]
    assert body["toolConfig"] == {"functionCallingConfig": config}


@pytest.mark.parametrize(
    ("tools", "choice"),
    [
        ([{"type": "web_search"}], None),
        ([{"type": "function", "function": {"description": "no name"}}], None),
        ([{"type": "function", "function": {"name": "f"}}], "sometimes"),
        ([{"type": "function", "function": {"name": "f"}}], {"type": "function"}),
    ],
)
def test_bad_tools(tools: list[dict[str, Any]], choice: Any) -> None:
    with pytest.raises(InvalidInputError):
        translate(tools=tools, tool_choice=choice)


def test_usage_by_modality() -> None:
    usage, split = usage_from_gemini(
        {
            "promptTokenCount": 1000,
            "promptTokensDetails": [
                {"modality": "TEXT", "tokenCount": 100},
                {"modality": "IMAGE", "tokenCount": 516},
                {"modality": "DOCUMENT", "tokenCount": 258},
                {"modality": "AUDIO", "tokenCount": 64},
                {"modality": "VIDEO", "tokenCount": 50},
            ],
            "toolUsePromptTokenCount": 5,
            "cachedContentTokenCount": 400,
            "candidatesTokenCount": 30,
            "thoughtsTokenCount": 70,
            "candidatesTokensDetails": [
                {"modality": "TEXT", "tokenCount": 20},
                {"modality": "AUDIO", "tokenCount": 10},
            ],
        }
    )
    assert split is True
    assert usage == Usage(
        text_input_tokens=100 + 12 + 5,  # the 12 the details leave out, and tool-use tokens
        image_input_tokens=516 + 258,
        audio_input_tokens=64,
        video_input_tokens=50,
        cached_input_tokens=400,
        output_tokens=90,
        audio_output_tokens=10,
    )


@pytest.mark.parametrize(
    ("meta", "usage", "split"),
    [
        (
            {"promptTokenCount": 12, "candidatesTokenCount": 3},
            Usage(text_input_tokens=12, output_tokens=3),
            False,
        ),
        ({"promptTokenCount": "lots", "candidatesTokenCount": -1}, Usage(), False),
        (None, Usage(), False),
        (
            {"promptTokenCount": 5, "cachedContentTokenCount": 9},
            Usage(text_input_tokens=5, cached_input_tokens=5),
            False,
        ),
    ],
)
def test_usage_without_details(meta: Any, usage: Usage, split: bool) -> None:
    assert usage_from_gemini(meta) == (usage, split)


def answer(parts: list[dict[str, Any]], finish: str = "STOP") -> dict[str, Any]:
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2},
    }


def test_completion_text_skips_thoughts_and_reads_function_calls() -> None:
    done = completion_from_gemini(
        "g",
        answer(
            [
                {"text": "planning...", "thought": True},
                {"text": "Sunny"},
                {"text": " today."},
                {"functionCall": {"name": "f", "args": {"x": 1}}, "thoughtSignature": "s"},
            ]
        ),
        "gemini-x",
    )
    assert done.content == "Sunny today." and done.finish_reason == "tool_calls"
    [tool_call] = done.tool_calls or []
    assert orjson.loads(tool_call["function"]["arguments"]) == {"x": 1}
    assert tool_call["extra_content"] == {"google": {"thought_signature": "s"}}
    assert done.body["model"] == "gemini-x" and done.body["usage"]["total_tokens"] == 6
    assert done.image_tokens_reported is False


@pytest.mark.parametrize(
    ("gemini", "openai"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("FINISH_REASON_FROM_THE_FUTURE", "stop"),
    ],
)
def test_finish_reasons(gemini: str, openai: str) -> None:
    assert completion_from_gemini("g", answer([{"text": "x"}], gemini), "m").finish_reason == openai


def test_blocked_prompt() -> None:
    done = completion_from_gemini("g", {"promptFeedback": {"blockReason": "SAFETY"}}, "m")
    assert (done.content, done.finish_reason) == ("", "content_filter")


@pytest.mark.parametrize("data", [[], {"candidates": []}, {"candidates": ["x"]}, "text"])
def test_malformed_answers(data: Any) -> None:
    with pytest.raises(UpstreamBadResponse):
        completion_from_gemini("g", data, "m")


def test_stream_translation() -> None:
    folded = GeminiStream("g", "m")
    chunks = folded.feed({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]})
    chunks += folded.feed(
        {
            "candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {}}}]}}],
            "usageMetadata": {"promptTokenCount": 3},
        }
    )
    chunks += folded.feed(
        {
            "candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
        }
    )
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert [d.get("content") for d in deltas if d.get("content")] == ["Hel", "lo"]
    assert [d["tool_calls"][0]["index"] for d in deltas if "tool_calls" in d] == [0]
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls" == folded.finish
    assert folded.usage == Usage(text_input_tokens=3, output_tokens=2)


def test_stream_rejects_non_objects() -> None:
    with pytest.raises(UpstreamBadResponse):
        GeminiStream("g", "m").feed([1, 2])


@pytest.mark.parametrize(
    ("delay", "seconds"), [("37s", 37.0), ("1.5s", 1.5), ("soon", None), (None, None)]
)
def test_retry_delay(delay: str | None, seconds: float | None) -> None:
    detail = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}
    assert retry_delay({"error": {"details": [{"@type": "other"}, detail]}}) == seconds
