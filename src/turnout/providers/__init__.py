"""Providers: one async interface over OpenAI-compatible, Gemini and Anthropic HTTP APIs."""

from ._anthropic import Anthropic
from ._base import Completion, Delta, Provider, ProviderCall, StreamEnd, StreamEvent
from ._gemini import Gemini
from ._openai import OpenAICompatible, usage_from_openai
from ._registry import build_provider

__all__ = [
    "Anthropic",
    "Completion",
    "Delta",
    "Gemini",
    "OpenAICompatible",
    "Provider",
    "ProviderCall",
    "StreamEnd",
    "StreamEvent",
    "build_provider",
    "usage_from_openai",
]
