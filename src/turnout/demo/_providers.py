"""Which providers the demo talks to: real ones when their keys are in the environment,
otherwise the stand-in upstream (simulated answers, usage and prices)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# (environment variable with the key, provider kind, cheap model, strong model)
_HOSTED = (
    ("OPENAI_API_KEY", "openai", "gpt-4.1-mini", "gpt-4.1"),
    ("ANTHROPIC_API_KEY", "anthropic", "claude-haiku-4-5", "claude-sonnet-4-5"),
    ("GEMINI_API_KEY", "gemini", "gemini-2.5-flash", "gemini-2.5-pro"),
)
# A local OpenAI-compatible server (Ollama, vLLM, llama.cpp): its models are priced as the
# catalog's self-hosted entries unless TURNOUT_DEMO_CATALOG names others.
_LOCAL_MODELS = ("qwen2-vl-7b-instruct", "qwen2-vl-72b-instruct")


@dataclass(frozen=True)
class DemoProviders:
    """The `providers` settings and the cheap and strong deployments the routes use."""

    simulated: bool
    description: str
    providers: dict[str, dict[str, Any]]
    cheap: dict[str, str]
    strong: dict[str, str]
    notes: list[str] = field(default_factory=list)


def simulated(upstream_url: str) -> DemoProviders:
    fast = {"attempts": 2, "base_delay_s": 0.05}
    return DemoProviders(
        simulated=True,
        description=f"the stand-in upstream on {upstream_url} (OpenAI wire format)",
        providers={"openai": {"kind": "openai", "base_url": upstream_url + "/v1", "retry": fast}},
        cheap={"provider": "openai", "model": "gpt-4.1-mini"},
        strong={"provider": "openai", "model": "gpt-4.1"},
    )


def from_environment(env: Mapping[str, str] | None = None) -> DemoProviders | None:
    """Real providers named by the environment, or None when there are none.

    TURNOUT_DEMO_BASE_URL (with TURNOUT_DEMO_MODELS=cheap,strong and, optionally,
    TURNOUT_DEMO_API_KEY) wins, then OPENAI_API_KEY (OPENAI_BASE_URL honoured),
    ANTHROPIC_API_KEY, GEMINI_API_KEY.
    """
    env = os.environ if env is None else env
    base_url = env.get("TURNOUT_DEMO_BASE_URL", "").strip()
    if base_url:
        return _local(base_url, env)
    for variable, kind, cheap, strong in _HOSTED:
        key = env.get(variable, "").strip()
        if not key:
            continue
        provider: dict[str, Any] = {"kind": kind, "api_key": key}
        where = kind
        if kind == "openai" and env.get("OPENAI_BASE_URL", "").strip():
            provider["base_url"] = env["OPENAI_BASE_URL"].strip()
            where = provider["base_url"]
        return DemoProviders(
            simulated=False,
            description=f"{where} ({variable}): {cheap} first, {strong} when a check fails",
            providers={kind: provider},
            cheap={"provider": kind, "model": cheap},
            strong={"provider": kind, "model": strong},
            notes=[
                "real providers bill real money: each tenant's daily budget below caps what "
                "this run may spend"
            ],
        )
    return None


def _local(base_url: str, env: Mapping[str, str]) -> DemoProviders:
    from turnout.core import ConfigError

    models = [m.strip() for m in env.get("TURNOUT_DEMO_MODELS", "").split(",") if m.strip()]
    if len(models) != 2:
        raise ConfigError(
            "TURNOUT_DEMO_BASE_URL is set: also set TURNOUT_DEMO_MODELS to the cheap and the "
            "strong model it serves, comma-separated (e.g. qwen2.5vl:7b,qwen2.5vl:72b)"
        )
    priced = [m.strip() for m in env.get("TURNOUT_DEMO_CATALOG", "").split(",") if m.strip()]
    if priced and len(priced) != 2:
        raise ConfigError(
            "TURNOUT_DEMO_CATALOG: give two catalog ids (the cheap and the strong model's "
            "prices and image-token rules), comma-separated"
        )
    catalog = priced or list(_LOCAL_MODELS)
    provider: dict[str, Any] = {"kind": "openai_compatible", "base_url": base_url}
    if env.get("TURNOUT_DEMO_API_KEY", "").strip():
        provider["api_key"] = env["TURNOUT_DEMO_API_KEY"].strip()
    return DemoProviders(
        simulated=False,
        description=f"{base_url} (TURNOUT_DEMO_BASE_URL): {models[0]}, then {models[1]}",
        providers={"local": provider},
        cheap={"provider": "local", "model": models[0], "catalog": catalog[0]},
        strong={"provider": "local", "model": models[1], "catalog": catalog[1]},
        notes=[
            f"costs are priced as the catalog's {catalog[0]} and {catalog[1]} "
            "(TURNOUT_DEMO_CATALOG to change)"
        ],
    )
