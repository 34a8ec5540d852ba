"""The stand-in's OpenAI chat-completions wire format."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from ._script import Reply, default_answer, estimate_prompt_tokens


def read_parts(body: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """(texts, image_url parts) of an OpenAI chat request's messages."""
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    texts.append(part.get("text", ""))
                elif part.get("type") == "image_url":
                    images.append(part)
    return texts, images


def read_request(body: dict[str, Any]) -> tuple[str, list[str], int]:
    """(model, texts, image count) of an OpenAI chat request."""
    texts, images = read_parts(body)
    return str(body.get("model", "")), texts, len(images)


# OpenAI's error `type` by status, as its API answers them.
_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
}


def error_body(reply: Reply) -> dict[str, Any]:
    kind = reply.error_type or _TYPE_BY_STATUS.get(reply.status, "server_error")
    return {"error": {"message": reply.error_message, "type": kind, "param": None, "code": kind}}


def _usage(reply: Reply, texts: list[str], images: int, answer: str) -> dict[str, Any]:
    prompt = reply.prompt_tokens or estimate_prompt_tokens(texts, images)
    completion = reply.completion_tokens or max(1, len(answer) // 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def usage(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    """The usage block this reply reports for `body` (the same in a stream's last chunk)."""
    model, texts, images = read_request(body)
    return _usage(reply, texts, images, _answer(reply, model, texts))


def _answer(reply: Reply, model: str, texts: list[str]) -> str:
    if reply.tool_calls or reply.refusal is not None:
        return reply.content or ""
    return (
        reply.content
        if reply.content is not None
        else default_answer(model, texts[-1] if texts else "", texts)
    )


def completion(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    model, texts, images = read_request(body)
    answer = _answer(reply, model, texts)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer or None,
        "refusal": reply.refusal,
    }
    if reply.tool_calls:
        message["tool_calls"] = reply.tool_calls
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}
        ],
        "usage": _usage(reply, texts, images, answer),
    }


def stream_chunks(reply: Reply, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    model, texts, images = read_request(body)
    answer = _answer(reply, model, texts)
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    yield {
        **base,
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        ],
    }
    if reply.tool_calls:
        calls = [{"index": i, **call} for i, call in enumerate(reply.tool_calls)]
        yield {
            **base,
            "choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": None}],
        }
    words = answer.split(" ") if answer else []
    for i, word in enumerate(words):
        piece = word if i == 0 else " " + word
        yield {
            **base,
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
        }
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]}
    if (body.get("stream_options") or {}).get("include_usage"):
        yield {**base, "choices": [], "usage": _usage(reply, texts, images, answer)}
