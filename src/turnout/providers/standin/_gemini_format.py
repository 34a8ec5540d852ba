"""The stand-in's Gemini wire format: `generateContent` answers, `streamGenerateContent`
events, usageMetadata split by modality, and Google's error body.

A scripted `Reply` reads the same as for OpenAI: `finish_reason` in OpenAI's words (or a
Gemini one, passed through), `tool_calls` OpenAI-shaped; a `refusal` becomes a blocked
prompt (promptFeedback.blockReason, no candidates), Gemini's nearest thing to a refusal.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson

from ._script import Reply, default_answer, estimate_prompt_tokens

IMAGE_TOKENS = 258  # what Gemini counts for an image up to 384 px a side
AUDIO_TOKENS = 160  # a flat five seconds at Gemini's 32 tokens a second
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY", "tool_calls": "STOP"}


def read_request(body: dict[str, Any]) -> tuple[list[str], int, int]:
    """(texts, image count, audio count) of a generateContent body, system first."""
    texts, images, audio = [], 0, 0
    turns = [body.get("systemInstruction") or {}, *(body.get("contents") or [])]
    for turn in turns:
        for part in turn.get("parts") or []:
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            mime = str((part.get("inlineData") or {}).get("mimeType", ""))
            images += mime.startswith("image/")
            audio += mime.startswith("audio/")
    return texts, images, audio


def error_body(reply: Reply) -> dict[str, Any]:
    status = reply.error_type or _STATUS_NAMES.get(
        reply.status, "INTERNAL" if reply.status >= 500 else "INVALID_ARGUMENT"
    )
    error: dict[str, Any] = {"code": reply.status, "message": reply.error_message, "status": status}
    if reply.retry_after is not None:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{reply.retry_after:g}s",
            }
        ]
    return {"error": error}


def usage_metadata(
    reply: Reply, body: dict[str, Any], answer: str, *, final: bool = True
) -> dict[str, Any]:
    texts, images, audio = read_request(body)
    text = estimate_prompt_tokens(texts, 0)
    if reply.prompt_tokens is not None:
        text = max(0, reply.prompt_tokens - IMAGE_TOKENS * images - AUDIO_TOKENS * audio)
    counts = {"TEXT": text, "IMAGE": IMAGE_TOKENS * images, "AUDIO": AUDIO_TOKENS * audio}
    details = [{"modality": m, "tokenCount": n} for m, n in counts.items() if n or m == "TEXT"]
    prompt = sum(counts.values())
    meta: dict[str, Any] = {"promptTokenCount": prompt, "promptTokensDetails": details}
    if reply.cached_tokens:
        meta["cachedContentTokenCount"] = min(prompt, reply.cached_tokens)
    output = 0
    if final:
        output = reply.completion_tokens or max(1, len(answer) // 4)
        meta["candidatesTokenCount"] = output
    meta["totalTokenCount"] = prompt + output
    return meta


def _answer(reply: Reply, body: dict[str, Any], model: str) -> str:
    if reply.tool_calls or reply.refusal is not None:
        return reply.content or ""
    if reply.content is not None:
        return reply.content
    texts = read_request(body)[0]
    return default_answer(model, texts[-1] if texts else "", texts)


def _function_calls(reply: Reply) -> list[dict[str, Any]]:
    parts = []
    for call in reply.tool_calls or ():
        function = call.get("function") or {}
        args = orjson.loads(function.get("arguments") or "{}")
        parts.append({"functionCall": {"name": function.get("name", ""), "args": args}})
    return parts


def _candidate(parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return candidate


def _finish(reply: Reply) -> str:
    return _FINISH.get(reply.finish_reason, reply.finish_reason)


def _blocked(reply: Reply, body: dict[str, Any], model: str) -> dict[str, Any]:
    return {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": usage_metadata(reply, body, "", final=False),
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:20],
    }


def completion(reply: Reply, model: str, body: dict[str, Any]) -> dict[str, Any]:
    if reply.refusal is not None:
        return _blocked(reply, body, model)
    answer = _answer(reply, body, model)
    parts = ([{"text": answer}] if answer else []) + _function_calls(reply)
    return {
        "candidates": [_candidate(parts, _finish(reply))],
        "usageMetadata": usage_metadata(reply, body, answer),
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:20],
    }


def stream_chunks(reply: Reply, model: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One response per word; the last carries the finishReason and the full usage."""
    if reply.refusal is not None:
        yield _blocked(reply, body, model)
        return
    answer = _answer(reply, body, model)
    words = answer.split(" ") if answer else []
    pieces: list[list[dict[str, Any]]] = [
        [{"text": word if i == 0 else " " + word}] for i, word in enumerate(words)
    ]
    if reply.tool_calls or not pieces:
        pieces.append(_function_calls(reply))
    response_id = uuid.uuid4().hex[:20]
    for i, parts in enumerate(pieces):
        last = i == len(pieces) - 1
        yield {
            "candidates": [_candidate(parts, _finish(reply) if last else None)],
            "usageMetadata": usage_metadata(reply, body, answer, final=last),
            "modelVersion": model,
            "responseId": response_id,
        }
