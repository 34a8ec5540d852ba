"""Driving a provider from synchronous tests: each call gets its own event loop and client."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

from tests.images import png_header_only
from turnout.core import ChatRequest
from turnout.providers import Completion, Delta, Provider, ProviderCall, StreamEnd, StreamEvent

PNG = png_header_only(2, 2)
GIF = b"GIF89a" + b"\0" * 20
PNG_DATA_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()


def chat(
    model: str = "m", text: str = "Describe the weather in Paris", **fields: Any
) -> ChatRequest:
    messages = fields.pop("messages", None) or [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": text},
    ]
    return ChatRequest.model_validate({"model": model, "messages": messages, **fields})


def call(request: ChatRequest, model: str | None = None, timeout: float = 5.0) -> ProviderCall:
    return ProviderCall(request=request, model=model or request.model, timeout=timeout)


def complete(make: Callable[[], Provider], pc: ProviderCall) -> Completion:
    async def go() -> Completion:
        provider = make()
        try:
            return await provider.complete(pc)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def stream(make: Callable[[], Provider], pc: ProviderCall) -> list[StreamEvent]:
    """Every event the stream yielded; a ProviderError propagates after the events so far."""

    async def go() -> list[StreamEvent]:
        provider = make()
        try:
            return [event async for event in provider.stream(pc)]
        finally:
            await provider.aclose()

    return asyncio.run(go())


def streamed_text(events: list[StreamEvent]) -> str:
    return "".join(
        choice["delta"].get("content") or ""
        for e in events
        if isinstance(e, Delta)
        for choice in e.chunk["choices"]
    )


def stream_end(events: list[StreamEvent]) -> StreamEnd:
    ends = [e for e in events if isinstance(e, StreamEnd)]
    assert len(ends) == 1 and events[-1] is ends[0], "exactly one StreamEnd, last"
    return ends[0]


def streamed_tool_calls(events: list[StreamEvent]) -> list[dict[str, Any]]:
    """Tool-call deltas folded the way an OpenAI client folds them, by index."""
    calls: dict[int, dict[str, Any]] = {}
    for e in events:
        if not isinstance(e, Delta):
            continue
        for piece in e.chunk["choices"][0]["delta"].get("tool_calls") or ():
            slot = calls.setdefault(piece["index"], {"id": None, "name": "", "arguments": ""})
            slot["id"] = piece.get("id") or slot["id"]
            function = piece.get("function") or {}
            slot["name"] += function.get("name") or ""
            slot["arguments"] += function.get("arguments") or ""
    return [calls[i] for i in sorted(calls)]
