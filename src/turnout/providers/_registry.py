"""Build a provider client from its configured kind."""

from __future__ import annotations

from collections.abc import Mapping

from turnout.core import ConfigError

from ._base import Provider
from ._openai import OpenAICompatible

_DEFAULT_URLS = {"openai": "https://api.openai.com/v1"}


def build_provider(
    kind: str,
    name: str,
    base_url: str | None,
    api_key: str | None,
    *,
    headers: Mapping[str, str] | None = None,
    max_connections: int = 200,
) -> Provider:
    if kind in ("openai", "openai_compatible"):
        return OpenAICompatible(
            name,
            base_url or _DEFAULT_URLS["openai"],
            api_key,
            headers=headers,
            max_connections=max_connections,
        )
    raise ConfigError(
        f"providers.{name}.kind: unknown kind {kind!r}; expected openai, openai_compatible"
    )
