"""The gateway over Gemini's and Anthropic's native APIs (their stand-in wire formats),
driven by the OpenAI SDK: translation is invisible to the client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from turnout.providers.standin import Reply, StandInServer

from .harness import png_data_uri, running_gateway, sdk

USER = [{"role": "user", "content": "Which river runs through Vienna?"}]


@pytest.fixture(scope="module")
def native_gateway(upstream: StandInServer) -> Iterator[str]:
    settings = {
        "providers": {
            "google": {
                "kind": "gemini",
                "base_url": upstream.url,
                "api_key": "g-key",
                "retry": {"attempts": 0},
            },
            "anthropic": {
                "kind": "anthropic",
                "base_url": upstream.url,
                "api_key": "a-key",
                "retry": {"attempts": 0},
            },
        },
        "routes": {
            "auto": {
                "tiers": [
                    {
                        "name": "cheap",
                        "deployments": [{"provider": "google", "model": "gemini-2.5-flash"}],
                    },
                    {
                        "name": "strong",
                        "deployments": [{"provider": "anthropic", "model": "claude-sonnet-4-5"}],
                    },
                ]
            }
        },
    }
    with running_gateway(settings) as url:
        yield url


def test_gemini_answers_with_its_own_image_token_count(
    native_gateway: str, standin: StandInServer
) -> None:
    content = [
        {"type": "text", "text": "Describe it."},
        {"type": "image_url", "image_url": {"url": png_data_uri((800, 800))}},
    ]
    chunks = list(
        sdk(native_gateway).chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": content}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Simulated answer from gemini-2.5-flash")
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.image_tokens > 0  # reported by Gemini, not estimated
    sent = standin.script.requests_for("gemini-2.5-flash")[-1]
    assert sent.headers["x-goog-api-key"] == "g-key"
    assert "inlineData" in sent.body["contents"][0]["parts"][1]


def test_gemini_empty_answer_escalates_to_anthropic(
    native_gateway: str, standin: StandInServer
) -> None:
    standin.script.push("gemini-2.5-flash", Reply(content=""))
    raw = sdk(native_gateway).chat.completions.with_raw_response.create(model="auto", messages=USER)
    assert raw.headers["x-turnout-attempt-log"] == (
        "cheap google/gemini-2.5-flash empty; strong anthropic/claude-sonnet-4-5 ok"
    )
    assert (
        raw.parse().choices[0].message.content.startswith("Simulated answer from claude-sonnet-4-5")
    )
    sent = standin.script.requests_for("claude-sonnet-4-5")[-1]
    assert sent.headers["x-api-key"] == "a-key" and sent.body["max_tokens"] > 0


def test_anthropic_stream_and_rate_limit_fallthrough(
    native_gateway: str, standin: StandInServer
) -> None:
    standin.script.push("gemini-2.5-flash", Reply(status=429, error_type="RESOURCE_EXHAUSTED"))
    chunks = list(
        sdk(native_gateway).chat.completions.create(model="auto", messages=USER, stream=True)
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Simulated answer from claude-sonnet-4-5 to: Which river runs through Vienna?"
