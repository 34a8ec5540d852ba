from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from turnout.core import CatalogError, UnknownModelError, load_catalog

SEED_MODELS = [
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "o3",
    "o4-mini",
    "gemini-2.0-flash",
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "qwen2-vl-2b-instruct",
    "qwen2-vl-7b-instruct",
    "qwen2-vl-72b-instruct",
    "smolvlm-instruct",
    "llama-4-scout",
]


def test_seed_models_present_with_sourced_prices() -> None:
    catalog = load_catalog()
    for model_id in SEED_MODELS:
        card = catalog.get(model_id)
        assert card.price.source and card.price.as_of
        assert card.latency.p50 <= card.latency.p95
    for card in catalog:
        if card.self_hosted:
            assert card.price.basis != "list" and card.price.assumption


def test_lookup_by_alias_case_insensitive() -> None:
    catalog = load_catalog()
    assert catalog.get("GPT-4o-2024-08-06").id == "gpt-4o"
    assert catalog.get("Qwen/Qwen2-VL-72B-Instruct").id == "qwen2-vl-72b-instruct"


def test_unknown_model_suggests() -> None:
    with pytest.raises(UnknownModelError, match=r"did you mean.*gpt-4o"):
        load_catalog().get("gpt4o")


def test_user_file_overrides_a_price_and_adds_a_model(tmp_path: Path) -> None:
    extra = tmp_path / "mine.yaml"
    extra.write_text(
        """
models:
  - id: gpt-4o
    price: {input: "2.00"}
  - id: my-vlm
    provider: self-hosted
    name: My VLM
    modalities: {input: [text, image], output: [text]}
    context_window: 8192
    tier: 2
    deploy: server
    price: {input: "0.05", output: "0.10", basis: amortized, assumption: "1 L4",
            source: me, as_of: 2026-11-01}
    image_tokens: {rule: gemini_tiles}
    latency: {p50: 0.5, p95: 1.0, source: measured}
"""
    )
    catalog = load_catalog([extra])
    assert catalog.get("gpt-4o").price.input == Decimal("2.00")
    assert catalog.get("gpt-4o").price.output == Decimal("10.00")  # merged, not replaced
    assert catalog.get("my-vlm").image_tokens is not None


def test_override_can_switch_image_rule(tmp_path: Path) -> None:
    extra = tmp_path / "rule.yaml"
    extra.write_text("models:\n  - id: gpt-4o\n    image_tokens: {rule: anthropic}\n")
    assert load_catalog([extra]).get("gpt-4o").image_tokens.rule == "anthropic"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("models:\n  - name: no id\n", r"models\[0\]: expected a mapping with a string 'id'"),
        ("models:\n  - id: gpt-4o\n    price: {input: cheap}\n", r"model 'gpt-4o': price.input"),
        ("models:\n  - id: gpt-4o\n    tier: 9\n", "tier"),
        ("models:\n  - id: gpt-4o\n    provider: acme\n", "unknown provider 'acme'"),
        ("models:\n  - id: gpt-4o\n    colour: red\n", "colour"),
        ("models:\n  - id: x\n    provider: openai\n", r"model 'x'.*name: required field missing"),
    ],
)
def test_malformed_user_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    extra = tmp_path / "bad.yaml"
    extra.write_text(text)
    with pytest.raises(CatalogError, match=message) as info:
        load_catalog([extra])
    if "model '" in message:
        assert str(extra) in str(info.value)


def test_missing_user_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read catalog file"):
        load_catalog([tmp_path / "nope.yaml"])


def test_alias_clash_is_refused(tmp_path: Path) -> None:
    extra = tmp_path / "clash.yaml"
    extra.write_text("models:\n  - id: gpt-4.1\n    aliases: [gpt-4o]\n")
    with pytest.raises(CatalogError, match="used by both"):
        load_catalog([extra])


def test_image_model_without_rule_is_refused(tmp_path: Path) -> None:
    extra = tmp_path / "norule.yaml"
    extra.write_text("models:\n  - id: gpt-4o\n    image_tokens: null\n")
    with pytest.raises(CatalogError, match="image_tokens rule"):
        load_catalog([extra])
