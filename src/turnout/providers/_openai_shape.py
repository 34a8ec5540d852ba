"""OpenAI's response shapes, built by every adapter that translates another provider."""

from __future__ import annotations

import time
import uuid
from typing import Any

from turnout.core import InvalidInputError, Usage

from ._base import Completion


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


def translated(
    *,
    model: str,
    content: str | None,
    tool_calls: list[dict[str, Any]],
    finish_reason: str,
    usage: Usage,
    refusal: str | None = None,
    image_tokens_reported: bool = False,
) -> Completion:
    """Another provider's answer as a Completion with an OpenAI `chat.completion` body."""
    body = chat_completion(
        model=model,
        content=content,
        tool_calls=tool_calls,
        finish_reason=finish_reason,
        usage=usage,
        refusal=refusal,
    )
    return Completion(
        body=body,
        usage=usage,
        content=content,
        finish_reason=finish_reason,
        tool_calls=tool_calls or None,
        refusal=refusal,
        image_tokens_reported=image_tokens_reported,
    )


def tool_choice_mode(choice: str | dict[str, Any]) -> tuple[str, str | None]:
    """OpenAI's `tool_choice` as (auto | none | required, the one function it names)."""
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise InvalidInputError(f"tool_choice {choice!r} is not auto, none or required")
        return choice, None
    name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
    if not name:
        raise InvalidInputError(
            "tool_choice must name a function: {type: function, function: {name}}"
        )
    return "required", str(name)


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
