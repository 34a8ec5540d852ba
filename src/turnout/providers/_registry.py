"""Build a provider client from its configured kind: the one place a kind becomes a class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from turnout.core import ConfigError

from ._anthropic import Anthropic
from ._base import Provider
from ._gemini import Gemini
from ._openai import OpenAICompatible

_OPENAI_URL = "https://api.openai.com/v1"
PROVIDER_KINDS = ("anthropic", "gemini", "openai", "openai_compatible")


def build_provider(
    kind: str,
    name: str,
    base_url: str | None,
    api_key: str | None,
    *,
    headers: Mapping[str, str] | None = None,
    max_connections: int = 200,
    **kw: Any,
) -> Provider:
    """A provider of `kind`; `kw` carries kind-specific options (Gemini's
    `max_image_bytes`, Anthropic's `default_max_tokens`)."""
    common: dict[str, Any] = {"headers": headers, "max_connections": max_connections, **kw}
    if kind in ("openai", "openai_compatible"):
        return OpenAICompatible(name, base_url or _OPENAI_URL, api_key, **common)
    if kind == "gemini":
        return Gemini(name, base_url, api_key, **common)
    if kind == "anthropic":
        return Anthropic(name, base_url, api_key, **common)
    raise ConfigError(
        f"providers.{name}.kind: unknown kind {kind!r}; expected {', '.join(PROVIDER_KINDS)}"
    )
