"""The stand-in's Anthropic Messages wire format: messages, the stream's event sequence,
usage, and Anthropic's error body.

A scripted `Reply` reads the same as for OpenAI: `finish_reason` in OpenAI's words (or an
Anthropic stop_reason, passed through), `tool_calls` OpenAI-shaped; a `refusal` is a
`stop_reason: refusal` whose text is the refusal.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson

from ._script import Reply, default_answer, estimate_prompt_tokens

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def read_request(body: dict[str, Any]) -> tuple[list[str], int]:
    """(texts, image count) of a Messages body, system first."""
    system = body.get("system")
    texts: list[str] = []
    if isinstance(system, str):
        texts.append(system)
    elif isinstance(system, list):
        texts.extend(b.get("text", "") for b in system if b.get("type") == "text")
    images = 0
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        for block in content or []:
            if block.get("type") == "text":
                texts.append(block.get("text", ""))
            elif block.get("type") == "image":
                images += 1
    return texts, images


def error_body(reply: Reply) -> dict[str, Any]:
    kind = reply.error_type or _ERROR_TYPES.get(
        reply.status, "api_error" if reply.status >= 500 else "invalid_request_error"
    )
    return {"type": "error", "error": {"type": kind, "message": reply.error_message}}


def _answer(reply: Reply, body: dict[str, Any]) -> str:
    if reply.refusal is not None:
        return reply.refusal
    if reply.tool_calls:
        return reply.content or ""
    if reply.content is not None:
        return reply.content
    texts = read_request(body)[0]
    # The last text is the last message's, as in the OpenAI format, not the system's.
    last = texts[-1] if texts and body.get("messages") else ""
    return default_answer(str(body.get("model", "")), last, texts)


def _stop_reason(reply: Reply) -> str:
    if reply.refusal is not None:
        return "refusal"
    return _STOP.get(reply.finish_reason, reply.finish_reason)


def usage(reply: Reply, body: dict[str, Any], answer: str) -> dict[str, Any]:
    texts, images = read_request(body)
    prompt = reply.prompt_tokens or estimate_prompt_tokens(texts, images)
    cached = min(prompt, reply.cached_tokens)
    return {
        "input_tokens": prompt - cached,  # Anthropic's count leaves cache reads out
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
        "output_tokens": reply.completion_tokens or max(1, len(answer) // 4),
    }


def _tool_uses(reply: Reply) -> list[dict[str, Any]]:
    blocks = []
    for call in reply.tool_calls or ():
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{uuid.uuid4().hex[:24]}",
                "name": function.get("name", ""),
                "input": orjson.loads(function.get("arguments") or "{}"),
            }
        )
    return blocks


def message(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    answer = _answer(reply, body)
    content = ([{"type": "text", "text": answer}] if answer else []) + _tool_uses(reply)
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": str(body.get("model", "")),
        "content": content,
        "stop_reason": _stop_reason(reply),
        "stop_sequence": None,
        "usage": usage(reply, body, answer),
    }


def stream_events(reply: Reply, body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, data) in Anthropic's order: message_start, ping, a start/delta.../stop
    run per content block, message_delta (stop_reason, output tokens), message_stop."""
    answer = _answer(reply, body)
    counts = usage(reply, body, answer)
    start = {**message(reply, body), "content": [], "stop_reason": None}
    start["usage"] = {**counts, "output_tokens": 1}
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    index = 0
    if answer:
        block = {"type": "text", "text": ""}
        yield (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )
        for i, word in enumerate(answer.split(" ")):
            delta = {"type": "text_delta", "text": word if i == 0 else " " + word}
            yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": 0}
        index = 1
    for offset, tool_use in enumerate(_tool_uses(reply)):
        at = index + offset
        arguments = orjson.dumps(tool_use.pop("input")).decode()
        tool_block = {**tool_use, "input": {}}
        yield (
            "content_block_start",
            {"type": "content_block_start", "index": at, "content_block": tool_block},
        )
        # Two halves, so a client must join partial JSON as it would for a real stream.
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            delta = {"type": "input_json_delta", "partial_json": piece}
            yield (
                "content_block_delta",
                {"type": "content_block_delta", "index": at, "delta": delta},
            )
        yield "content_block_stop", {"type": "content_block_stop", "index": at}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
            "usage": {"output_tokens": counts["output_tokens"]},
        },
    )
    yield "message_stop", {"type": "message_stop"}
