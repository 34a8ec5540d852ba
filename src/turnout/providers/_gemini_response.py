"""Gemini answers as OpenAI chat completions and chunks, and Gemini's usage by modality.

Also the OpenAI body builders the Gemini and Anthropic translations share: turnout's
canonical response is OpenAI's `chat.completion`, whichever upstream answered.
"""

from __future__ import annotations

from typing import Any

import orjson

from turnout.core import Usage

from ._base import Completion
from ._http import malformed
from ._openai_shape import ChunkMaker, tool_call_id, translated

_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
}
# Gemini reads PDF pages as images, so a document's tokens are image tokens.
_MODALITY_FIELD = {
    "TEXT": "text_input_tokens",
    "IMAGE": "image_input_tokens",
    "DOCUMENT": "image_input_tokens",
    "AUDIO": "audio_input_tokens",
    "VIDEO": "video_input_tokens",
}


def finish_reason(reason: Any, called_function: bool) -> str:
    mapped = _FINISH.get(str(reason), "stop")
    return "tool_calls" if called_function and mapped == "stop" else mapped


def usage_from_gemini(meta: Any) -> tuple[Usage, bool]:
    """Usage from `usageMetadata`, and whether the prompt came split by modality."""
    if not isinstance(meta, dict):
        return Usage(), False
    counts = dict.fromkeys(_MODALITY_FIELD.values(), 0)
    details = meta.get("promptTokensDetails")
    details = details if isinstance(details, list) else []
    split = bool(details)
    for detail in details:
        if isinstance(detail, dict):
            field = _MODALITY_FIELD.get(str(detail.get("modality")), "text_input_tokens")
            counts[field] += _count(detail.get("tokenCount"))
    # Tokens the details leave out, and tool-use prompt tokens, are billed as text.
    counts["text_input_tokens"] += max(
        0, _count(meta.get("promptTokenCount")) - sum(counts.values())
    )
    counts["text_input_tokens"] += _count(meta.get("toolUsePromptTokenCount"))
    audio_out = sum(
        _count(d.get("tokenCount"))
        for d in meta.get("candidatesTokensDetails") or ()
        if isinstance(d, dict) and d.get("modality") == "AUDIO"
    )
    output = _count(meta.get("candidatesTokenCount")) + _count(meta.get("thoughtsTokenCount"))
    return (
        Usage(
            **counts,
            cached_input_tokens=min(
                _count(meta.get("cachedContentTokenCount")), sum(counts.values())
            ),
            output_tokens=max(0, output - audio_out),
            audio_output_tokens=audio_out,
        ),
        split,
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def read_parts(candidate: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The answer text and OpenAI tool calls in a Gemini candidate (thoughts left out)."""
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    texts, calls = [], []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict) or part.get("thought"):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(call := part.get("functionCall"), dict):
            calls.append(_tool_call(call, part.get("thoughtSignature")))
    return "".join(texts), calls


def _tool_call(call: dict[str, Any], signature: Any) -> dict[str, Any]:
    tool_call: dict[str, Any] = {
        "id": str(call.get("id") or tool_call_id()),
        "type": "function",
        "function": {
            "name": str(call.get("name") or ""),
            "arguments": orjson.dumps(call.get("args") or {}).decode(),
        },
    }
    if signature:
        # Where Google's own OpenAI-compatible endpoint keeps it, so clients echo it back.
        tool_call["extra_content"] = {"google": {"thought_signature": signature}}
    return tool_call


def prompt_blocked(data: dict[str, Any]) -> bool:
    feedback = data.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def completion_from_gemini(provider: str, data: Any, model: str) -> Completion:
    if not isinstance(data, dict):
        raise malformed(provider, "response is not an object")
    usage, split = usage_from_gemini(data.get("usageMetadata"))
    candidates = data.get("candidates")
    calls: list[dict[str, Any]] = []
    content: str | None
    if not candidates:
        if not prompt_blocked(data):
            raise malformed(provider, "no candidates and no promptFeedback.blockReason")
        content, finish = "", "content_filter"
    elif not isinstance(candidates, list) or not isinstance(candidates[0], dict):
        raise malformed(provider, "candidates[0] is not an object")
    else:
        text, calls = read_parts(candidates[0])
        content = None if calls and not text else text  # as OpenAI answers a bare tool call
        finish = finish_reason(candidates[0].get("finishReason"), bool(calls))
    return translated(
        model=model,
        content=content,
        tool_calls=calls,
        finish_reason=finish,
        usage=usage,
        image_tokens_reported=split,
    )


class GeminiStream:
    """Folds Gemini's streamed responses into OpenAI chunks, keeping usage and finish."""

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.chunk = ChunkMaker(model)
        self.usage, self.split = Usage(), False
        self.finish: str | None = None
        self.tool_calls = 0
        self.started = False

    def feed(self, data: Any) -> list[dict[str, Any]]:
        if not isinstance(data, dict):
            raise malformed(self.provider, "stream event is not an object")
        chunks = []
        if not self.started:
            self.started = True
            chunks.append(self.chunk({"role": "assistant", "content": ""}))
        if "usageMetadata" in data:
            # Each event repeats the running totals; the last one seen is the answer's.
            self.usage, self.split = usage_from_gemini(data["usageMetadata"])
        candidates = data.get("candidates")
        if not candidates:
            if prompt_blocked(data):
                self.finish = "content_filter"
                chunks.append(self.chunk({}, self.finish))
            return chunks
        if not isinstance(candidates, list) or not isinstance(candidates[0], dict):
            raise malformed(self.provider, "candidates[0] is not an object")
        text, calls = read_parts(candidates[0])
        if text:
            chunks.append(self.chunk({"content": text}))
        if calls:
            indexed = [{"index": self.tool_calls + i, **c} for i, c in enumerate(calls)]
            self.tool_calls += len(calls)
            chunks.append(self.chunk({"tool_calls": indexed}))
        if reason := candidates[0].get("finishReason"):
            self.finish = finish_reason(reason, self.tool_calls > 0)
            chunks.append(self.chunk({}, self.finish))
        return chunks
