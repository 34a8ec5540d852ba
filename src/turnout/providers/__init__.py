"""Providers: one async interface over OpenAI-compatible, Gemini and Anthropic HTTP APIs."""

from ._base import Completion, Delta, Provider, ProviderCall, StreamEnd, StreamEvent
from ._openai import OpenAICompatible, usage_from_openai

__all__ = [
    "Completion",
    "Delta",
    "OpenAICompatible",
    "Provider",
    "ProviderCall",
    "StreamEnd",
    "StreamEvent",
    "usage_from_openai",
]
