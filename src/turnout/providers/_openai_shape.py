"""OpenAI's response shapes, built by every adapter that translates another provider."""

from __future__ import annotations

import time
import uuid
from typing import Any

from turnout.core import Usage


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def openai_usage(usage: Usage) -> dict[str, Any]:
    completion = usage.output_tokens + usage.audio_output_tokens
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": completion,
        "total_tokens": usage.input_tokens + completion,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_input_tokens,
            "audio_tokens": usage.audio_input_tokens,
        },
        "completion_tokens_details": {"audio_tokens": usage.audio_output_tokens},
    }


def chat_completion(
    *,
    model: str,
    content: str | None,
    tool_calls: list[dict[str, Any]],
    finish_reason: str,
    usage: Usage,
    refusal: str | None = None,
) -> dict[str, Any]:
    """An OpenAI `chat.completion` body."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        ],
        "usage": openai_usage(usage),
    }


class ChunkMaker:
    """OpenAI `chat.completion.chunk`s of one stream: one id, one created time."""

    def __init__(self, model: str) -> None:
        self.base = {
            "id": completion_id(),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }

    def __call__(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return {**self.base, "choices": [choice]}
