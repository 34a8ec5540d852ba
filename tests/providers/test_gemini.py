"""The Gemini adapter over real HTTP against the stand-in's Gemini wire format."""

from __future__ import annotations

import base64
from functools import partial

import orjson
import pytest

from turnout.core import (
    InvalidImageError,
    PayloadTooLargeError,
    ProviderError,
    UnsupportedMediaError,
    UpstreamBadResponse,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from turnout.providers import Delta, Gemini
from turnout.providers._http import HttpReply
from turnout.providers.standin import Reply, StandInServer
from turnout.providers.standin._script import default_answer, estimate_prompt_tokens

from .calls import (
    PNG,
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
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
WEATHER_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}


def gemini(upstream: StandInServer, **kw: object) -> partial[Gemini]:
    # The side host serving images is on loopback, which the default refuses to fetch.
    kw.setdefault("allow_private_image_urls", True)
    return partial(Gemini, "gem", upstream.url, "k-gem", **kw)  # type: ignore[arg-type]


def sent(upstream: StandInServer) -> dict:  # type: ignore[type-arg]
    [received] = upstream.script.received
    return received.body  # type: ignore[no-any-return]


def image_request(*urls: str) -> object:
    parts = [{"type": "text", "text": "What is in these?"}]
    parts += [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    return chat("gemini-x", messages=[{"role": "user", "content": parts}])


def test_plain_answer(upstream: StandInServer) -> None:
    request = chat("gemini-x", max_tokens=50, temperature=0.2, top_p=0.9, stop="END", seed=7)
    done = complete(gemini(upstream), call(request))
    assert done.content == default_answer("gemini-x", PROMPT)
    assert done.finish_reason == "stop"
    message = done.body["choices"][0]["message"]
    assert done.body["object"] == "chat.completion" and message["content"] == done.content
    assert done.body["usage"]["prompt_tokens"] == done.usage.input_tokens
    [received] = upstream.script.received
    assert received.path == "/v1beta/models/gemini-x:generateContent"
    assert received.headers["x-goog-api-key"] == "k-gem"
    assert received.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert received.body["contents"] == [{"role": "user", "parts": [{"text": PROMPT}]}]
    assert received.body["generationConfig"] == {
        "maxOutputTokens": 50,
        "temperature": 0.2,
        "topP": 0.9,
        "stopSequences": ["END"],
        "seed": 7,
    }


def test_usage_by_modality(upstream: StandInServer) -> None:
    upstream.script.push("gemini-x", Reply(completion_tokens=7, cached_tokens=10))
    audio = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    image = {"type": "image_url", "image_url": {"url": PNG_DATA_URI}}
    text = {"type": "text", "text": "Compare the picture and the sound"}
    request = chat("gemini-x", messages=[{"role": "user", "content": [text, image, audio]}])
    done = complete(gemini(upstream), call(request))
    assert done.image_tokens_reported is True
    assert done.usage.text_input_tokens == estimate_prompt_tokens([text["text"]], 0)
    assert done.usage.image_input_tokens == 258
    assert done.usage.audio_input_tokens == 160
    assert done.usage.cached_input_tokens == 10
    assert done.usage.output_tokens == 7
    parts = sent(upstream)["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": PNG_DATA_URI[22:]}}
    assert parts[2] == {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}}


def test_image_url_is_fetched_and_inlined_without_the_key(
    upstream: StandInServer, side_host: SideHost
) -> None:
    request = image_request(f"{side_host.url}/cat.png", f"{side_host.url}/moved.png")
    done = complete(gemini(upstream), call(request))
    assert done.usage.image_input_tokens == 2 * 258
    inline = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}}
    assert sent(upstream)["contents"][0]["parts"][1:] == [inline, inline]
    assert side_host.seen_headers
    assert not any("x-goog-api-key" in h for h in side_host.seen_headers)


def test_image_urls_on_private_addresses_are_refused_by_default(
    upstream: StandInServer, side_host: SideHost
) -> None:
    request = image_request(f"{side_host.url}/cat.png", f"{side_host.url}/cat.png")
    fetched = len(side_host.seen_headers)
    with pytest.raises(InvalidImageError, match="non-public address"):
        complete(gemini(upstream, allow_private_image_urls=False), call(request))
    assert len(side_host.seen_headers) == fetched
    assert not upstream.script.received


@pytest.mark.parametrize(
    ("path", "error", "words"),
    [
        ("/missing.png", InvalidImageError, "answered 404"),
        ("/page.html", InvalidImageError, "is not an image"),
        ("/cat.gif", UnsupportedMediaError, "GIF"),
        ("/big.png", PayloadTooLargeError, "100000-byte limit"),
    ],
)
def test_image_url_problems_are_the_callers(
    upstream: StandInServer, side_host: SideHost, path: str, error: type, words: str
) -> None:
    make = gemini(upstream, max_image_bytes=100_000)
    with pytest.raises(error, match=words):
        complete(make, call(image_request(side_host.url + path)))
    assert not upstream.script.received


def test_unreachable_image_host_is_an_invalid_image(upstream: StandInServer) -> None:
    with pytest.raises(InvalidImageError, match="could not be fetched"):
        complete(gemini(upstream), call(image_request("http://127.0.0.1:9/x.png")))


def test_tools_round_trip(upstream: StandInServer) -> None:
    upstream.script.push("gemini-x", Reply(tool_calls=[WEATHER_CALL]))
    request = chat(
        "gemini-x",
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    done = complete(gemini(upstream), call(request))
    assert done.finish_reason == "tool_calls"
    [tool_call] = done.tool_calls or []
    assert tool_call["id"].startswith("call_")
    assert tool_call["function"]["name"] == "get_weather"
    assert orjson.loads(tool_call["function"]["arguments"]) == {"city": "Paris"}
    body = sent(upstream)
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parametersJsonSchema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
                }
            ]
        }
    ]
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }

    upstream.script.reset()
    follow_up = chat(
        "gemini-x",
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": None, "tool_calls": [tool_call]},
            {"role": "tool", "tool_call_id": tool_call["id"], "content": '{"temp_c": 18}'},
        ],
    )
    assert complete(gemini(upstream), call(follow_up)).finish_reason == "stop"
    contents = sent(upstream)["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
    ]
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}}
    ]


def test_json_schema_becomes_response_json_schema(upstream: StandInServer) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    request = chat(
        "gemini-x",
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
    )
    complete(gemini(upstream), call(request))
    config = sent(upstream)["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}


def test_stream(upstream: StandInServer) -> None:
    upstream.script.push("gemini-x", Reply(completion_tokens=11))
    request = chat(
        "gemini-x",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": PROMPT},
                    {"type": "image_url", "image_url": {"url": PNG_DATA_URI}},
                ],
            }
        ],
    )
    events = stream(gemini(upstream), call(request))
    first = events[0]
    assert isinstance(first, Delta)
    assert first.chunk["choices"][0]["delta"]["role"] == "assistant"
    assert streamed_text(events) == default_answer("gemini-x", PROMPT)
    assert len([e for e in events if isinstance(e, Delta)]) > 3
    end = stream_end(events)
    assert end.finish_reason == "stop" and end.image_tokens_reported
    assert end.usage.image_input_tokens == 258 and end.usage.output_tokens == 11
    assert upstream.script.received[0].path.endswith(":streamGenerateContent")


def test_stream_tool_calls(upstream: StandInServer) -> None:
    upstream.script.push("gemini-x", Reply(tool_calls=[WEATHER_CALL]))
    events = stream(gemini(upstream), call(chat("gemini-x", tools=[WEATHER_TOOL])))
    [tool_call] = streamed_tool_calls(events)
    assert tool_call["name"] == "get_weather"
    assert orjson.loads(tool_call["arguments"]) == {"city": "Paris"}
    assert stream_end(events).finish_reason == "tool_calls"


def test_blocked_prompt_is_a_filtered_answer(upstream: StandInServer) -> None:
    upstream.script.push("gemini-x", Reply(refusal="blocked"), Reply(refusal="blocked"))
    done = complete(gemini(upstream), call(chat("gemini-x")))
    assert (done.content, done.finish_reason, done.tool_calls) == ("", "content_filter", None)
    assert done.usage.input_tokens > 0 and done.usage.output_tokens == 0
    end = stream_end(stream(gemini(upstream), call(chat("gemini-x"))))
    assert end.finish_reason == "content_filter"


@pytest.mark.parametrize(
    ("scripted", "finish"),
    [("length", "length"), ("content_filter", "content_filter"), ("RECITATION", "content_filter")],
)
def test_finish_reasons(upstream: StandInServer, scripted: str, finish: str) -> None:
    upstream.script.push("gemini-x", Reply(finish_reason=scripted))
    assert complete(gemini(upstream), call(chat("gemini-x"))).finish_reason == finish


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(status=429, retry_after=2), UpstreamRateLimited),
        (Reply(status=500), UpstreamUnavailable),
        (Reply(status=503), UpstreamUnavailable),
        (Reply(status=504), UpstreamTimeout),
        (Reply(status=400), UpstreamRejected),
        (Reply(status=403), UpstreamRejected),
        (Reply(status=500, error_type="RESOURCE_EXHAUSTED"), UpstreamRateLimited),  # body wins
        (Reply(delay=1.0), UpstreamTimeout),
        (Reply(malformed=True), UpstreamBadResponse),
    ],
)
def test_errors(upstream: StandInServer, reply: Reply, error: type[ProviderError]) -> None:
    upstream.script.push("gemini-x", reply)
    with pytest.raises(ProviderError) as caught:
        complete(gemini(upstream), call(chat("gemini-x"), timeout=0.3))
    assert type(caught.value) is error
    assert caught.value.provider == "gem"
    if reply.retry_after is not None:
        assert caught.value.retry_after == reply.retry_after
    if reply.status != 200:
        assert caught.value.status == reply.status


def test_retry_info_in_the_body_is_honoured_without_a_header() -> None:
    body = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "message": "quota",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}],
        }
    }
    error = Gemini("gem")._error(HttpReply(429, {}, orjson.dumps(body)))
    assert isinstance(error, UpstreamRateLimited) and error.retry_after == 37.0
    assert error.code == "RESOURCE_EXHAUSTED"


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(drop_after=2), UpstreamUnavailable),
        (Reply(status=503, drop_after=2), UpstreamUnavailable),
        (Reply(status=429, drop_after=1), UpstreamRateLimited),
        (Reply(malformed=True), UpstreamBadResponse),
        (Reply(status=400), UpstreamRejected),
    ],
)
def test_stream_errors(upstream: StandInServer, reply: Reply, error: type[ProviderError]) -> None:
    upstream.script.push("gemini-x", reply)
    with pytest.raises(ProviderError) as caught:
        stream(gemini(upstream), call(chat("gemini-x")))
    assert type(caught.value) is error


def test_stream_without_finish_reason_is_dropped(side_host: SideHost) -> None:
    with pytest.raises(UpstreamUnavailable, match="stream dropped"):
        stream(partial(Gemini, "gem", side_host.url), call(chat("gemini-x")))
