from __future__ import annotations

from decimal import Decimal

import pytest

from turnout.core import InvalidInputError, load_catalog, load_shapes, recommend

CATALOG = load_catalog()
SHAPES = load_shapes()


def test_every_shape_the_cli_offers_exists() -> None:
    assert set(SHAPES) == {"assistant", "docqa", "visual-search", "video", "on-prem", "edge"}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_ranked_cheapest_first_and_everything_accounted_for(shape: str) -> None:
    result = recommend(CATALOG, SHAPES[shape])
    costs = [c.cost.exact for c in result.ranked]
    assert costs == sorted(costs)
    assert len(result.ranked) + len(result.dropped) == len(CATALOG)
    assert all(d.reason for d in result.dropped)
    for c in result.ranked:
        assert c.model.tier >= SHAPES[shape].min_tier
        assert c.p95 <= result.p95_limit


def test_assistant_drops_with_reasons() -> None:
    result = recommend(CATALOG, SHAPES["assistant"])
    reasons = {d.model.id: d.reason for d in result.dropped}
    assert "tier 1 below" in reasons["gpt-4.1-nano"]
    assert "p95 25 s over the 2 s limit" in reasons["o3"]
    assert "this shape needs a chat model" in reasons["openai/clip-vit-base-patch32"]


def test_video_needs_video_input_and_prices_the_clip() -> None:
    result = recommend(CATALOG, SHAPES["video"], p95=60)
    assert {c.model.provider for c in result.ranked} == {"google"}
    pro = next(c for c in result.ranked if c.model.id == "gemini-2.5-pro")
    # 600 s x 263 tokens/s at $1.25/M plus 200 text in and 800 out at $10/M: the seed's ~$0.20.
    assert pro.usage.video_input_tokens == 157_800
    assert pro.cost.exact == (Decimal(158_000) * Decimal("1.25") + 800 * Decimal(10)) / 10**6
    reasons = {d.model.id: d.reason for d in result.dropped}
    assert reasons["gpt-4o"] == "no video input"


def test_max_cost_and_p95_constraints() -> None:
    result = recommend(CATALOG, SHAPES["docqa"], max_cost=Decimal("0.003"), p95=3.0)
    assert all(c.cost.exact <= Decimal("0.003") and c.p95 <= 3.0 for c in result.ranked)
    assert any("per query over the $0.003 limit" in d.reason for d in result.dropped)


def test_self_hosted_only() -> None:
    result = recommend(CATALOG, SHAPES["docqa"], self_hosted=True)
    assert result.ranked and all(c.model.self_hosted for c in result.ranked)
    assert any("hosted API" in d.reason for d in result.dropped)


def test_extra_modality_requirement() -> None:
    result = recommend(CATALOG, SHAPES["assistant"], modalities=["audio"], p95=10)
    assert result.ranked and all(c.model.accepts("audio") for c in result.ranked)


def test_edge_shape_only_edge_models() -> None:
    result = recommend(CATALOG, SHAPES["edge"])
    assert {c.model.deploy for c in result.ranked} == {"edge"}


def test_impossible_constraints_leave_no_candidate() -> None:
    result = recommend(CATALOG, SHAPES["assistant"], max_cost=Decimal("0.0000001"))
    assert result.ranked == ()


def test_bad_constraints() -> None:
    with pytest.raises(InvalidInputError, match="--p95"):
        recommend(CATALOG, SHAPES["assistant"], p95=-1)
    with pytest.raises(InvalidInputError, match="--max-cost"):
        recommend(CATALOG, SHAPES["assistant"], max_cost=Decimal(-1))
