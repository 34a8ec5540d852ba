"""One interface over every model provider.

A provider takes turnout's request (OpenAI's chat format) and a model name, and returns
an OpenAI-shaped completion (or stream of chunks) plus the usage by modality. Each
implementation converts its own errors into core's ProviderError tree, once, here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from turnout.core import ChatRequest, Usage


@dataclass(frozen=True)
class ProviderCall:
    request: ChatRequest
    model: str  # the upstream's name for the model
    timeout: float  # seconds for this attempt, connect to last byte


@dataclass(frozen=True)
class Completion:
    """A finished answer, as an OpenAI `chat.completion` body plus what turnout reads off it."""

    body: dict[str, Any]
    usage: Usage
    content: str | None
    finish_reason: str | None
    tool_calls: list[dict[str, Any]] | None = None
    refusal: str | None = None
    # False where the provider folds image tokens into its text count (OpenAI does).
    image_tokens_reported: bool = False


@dataclass(frozen=True)
class Delta:
    """One OpenAI `chat.completion.chunk` for the client (never carries usage)."""

    chunk: dict[str, Any]


@dataclass(frozen=True)
class StreamEnd:
    usage: Usage
    finish_reason: str | None
    image_tokens_reported: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


StreamEvent = Delta | StreamEnd


class Provider(ABC):
    """A configured upstream: one base URL and key, a pooled HTTP client."""

    api: str = ""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    async def complete(self, call: ProviderCall) -> Completion:
        """One non-streaming call; raises a ProviderError subclass on failure."""

    @abstractmethod
    def stream(self, call: ProviderCall) -> AsyncIterator[StreamEvent]:
        """Chunks as they arrive, then exactly one StreamEnd; ProviderError on failure."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close pooled connections."""
