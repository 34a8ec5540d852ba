"""Which providers the demo uses, from the environment."""

from __future__ import annotations

import pytest

from turnout.core import ConfigError, Settings
from turnout.demo import from_environment


def test_no_keys_means_simulated() -> None:
    assert from_environment({}) is None
    assert from_environment({"OPENAI_API_KEY": "  "}) is None


@pytest.mark.parametrize(
    ("variable", "kind", "cheap"),
    [
        ("OPENAI_API_KEY", "openai", "gpt-4.1-mini"),
        ("ANTHROPIC_API_KEY", "anthropic", "claude-haiku-4-5"),
        ("GEMINI_API_KEY", "gemini", "gemini-2.5-flash"),
    ],
)
def test_a_hosted_key_picks_that_provider(variable: str, kind: str, cheap: str) -> None:
    found = from_environment({variable: "sk-test"})
    assert found is not None and not found.simulated
    assert found.providers[kind]["api_key"] == "sk-test"
    assert found.cheap == {"provider": kind, "model": cheap}
    assert any("real money" in note for note in found.notes)
    # what it builds is valid gateway settings
    Settings.model_validate(
        {
            "providers": found.providers,
            "routes": {"r": {"tiers": [{"name": "c", "deployments": [found.cheap]}]}},
        }
    )


def test_openai_base_url_is_honoured() -> None:
    found = from_environment({"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "https://proxy/v1"})
    assert found is not None
    assert found.providers["openai"]["base_url"] == "https://proxy/v1"


def test_a_local_server_wins_and_needs_its_models() -> None:
    with pytest.raises(ConfigError, match="TURNOUT_DEMO_MODELS"):
        from_environment({"TURNOUT_DEMO_BASE_URL": "http://localhost:11434/v1"})
    found = from_environment(
        {
            "TURNOUT_DEMO_BASE_URL": "http://localhost:11434/v1",
            "TURNOUT_DEMO_MODELS": "qwen2.5vl:7b, qwen2.5vl:72b",
            "OPENAI_API_KEY": "ignored",
        }
    )
    assert found is not None and "local" in found.providers
    assert found.cheap["model"] == "qwen2.5vl:7b"
    assert found.strong["catalog"] == "qwen2-vl-72b-instruct"


def test_a_local_server_with_one_catalog_id_is_refused() -> None:
    with pytest.raises(ConfigError, match="two catalog ids"):
        from_environment(
            {
                "TURNOUT_DEMO_BASE_URL": "http://localhost:8000/v1",
                "TURNOUT_DEMO_MODELS": "a,b",
                "TURNOUT_DEMO_CATALOG": "gpt-4o",
            }
        )


def test_missing_demo_packages_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from turnout.demo._tour import _require_extras

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "fpdf" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"needs fpdf: pip install 'turnout\[demo\]'"):
        _require_extras()
