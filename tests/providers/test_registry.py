"""Providers by kind, and the deliberate public API of `turnout.providers`."""

from __future__ import annotations

import asyncio

import pytest

import turnout.providers
from turnout.core import ConfigError
from turnout.providers import Anthropic, Gemini, OpenAICompatible, Provider, build_provider

EXPORTED = {
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
}


def test_public_api_is_pinned() -> None:
    assert set(turnout.providers.__all__) == EXPORTED
    public = {n for n in vars(turnout.providers) if not n.startswith("_")}
    modules = {n for n, v in vars(turnout.providers).items() if type(v).__name__ == "module"}
    assert public - modules == EXPORTED


@pytest.mark.parametrize(
    ("kind", "cls", "api"),
    [
        ("openai", OpenAICompatible, "openai"),
        ("openai_compatible", OpenAICompatible, "openai"),
        ("gemini", Gemini, "gemini"),
        ("anthropic", Anthropic, "anthropic"),
    ],
)
def test_build_by_kind(kind: str, cls: type[Provider], api: str) -> None:
    provider = build_provider(kind, "p", None, "key", headers={"x-team": "a"}, max_connections=4)
    assert type(provider) is cls and provider.api == api and provider.name == "p"
    asyncio.run(provider.aclose())


def test_kind_specific_options_reach_the_constructor() -> None:
    provider = build_provider("anthropic", "p", "http://127.0.0.1:1", None, default_max_tokens=5)
    assert isinstance(provider, Anthropic) and provider._default_max_tokens == 5
    with pytest.raises(TypeError):
        build_provider("openai", "p", None, None, default_max_tokens=5)


def test_unknown_kind_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"providers\.p\.kind: unknown kind 'bedrock'") as caught:
        build_provider("bedrock", "p", None, None)
    for kind in ("anthropic", "gemini", "openai", "openai_compatible"):
        assert kind in str(caught.value)
