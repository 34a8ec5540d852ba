"""Every example the providers document, and properties the rules must keep."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from turnout.core import (
    AnthropicRule,
    Detail,
    GeminiMediaResolutionRule,
    GeminiTileRule,
    InvalidDetailError,
    InvalidSizeError,
    OpenAIPatchRule,
    OpenAITileRule,
    QwenVLRule,
    count_image_tokens,
    load_catalog,
    parse_detail,
)

GPT4O = OpenAITileRule(base=85, tile=170)


# --- documented examples (REFERENCE.md) ---------------------------------------------------


@pytest.mark.parametrize(
    ("size", "detail", "tokens"),
    [
        ((1024, 1024), Detail.HIGH, 765),
        ((2048, 4096), Detail.HIGH, 1105),
        ((1024, 1024), Detail.LOW, 85),
        ((4096, 8192), Detail.LOW, 85),
        ((100, 100), Detail.LOW, 85),
    ],
)
def test_openai_tile_documented_examples(
    size: tuple[int, int], detail: Detail, tokens: int
) -> None:
    assert GPT4O.count(*size, detail).tokens == tokens


def test_openai_tile_shows_its_work() -> None:
    counted = GPT4O.count(2048, 4096, Detail.HIGH)
    assert counted.processed_size == (768, 1536)
    assert any("fit within 2048" in s for s in counted.steps)
    assert any("2x3 tiles" in s for s in counted.steps)


def test_openai_tile_auto_is_reserved_as_high() -> None:
    assert GPT4O.count(1024, 1024, Detail.AUTO).tokens == 765
    assert GPT4O.count(1024, 1024, Detail.AUTO).detail is Detail.HIGH


def test_openai_tile_does_not_upscale_short_sides() -> None:
    # 600x600 stays 600x600: 2x2 tiles, not scaled up to 768.
    assert GPT4O.count(600, 600, Detail.HIGH).tokens == 85 + 170 * 4
    assert GPT4O.count(512, 512, Detail.HIGH).tokens == 85 + 170


@pytest.mark.parametrize(
    ("model", "base", "tile"),
    [
        ("gpt-4o", 85, 170),
        ("gpt-4o-mini", 2833, 5667),
        ("o1", 75, 150),
        ("o3", 75, 150),
        ("gpt-4.1", 85, 170),
    ],
)
def test_catalog_carries_tile_parameters(model: str, base: int, tile: int) -> None:
    card = load_catalog().get(model)
    assert count_image_tokens(card, 10, 10, "low").tokens == base
    assert count_image_tokens(card, 1024, 1024, "high").tokens == base + 4 * tile


@pytest.mark.parametrize(
    ("size", "patches"), [((1024, 1024), 1024), ((1800, 2400), 1452), ((2400, 1800), 1452)]
)
def test_openai_patch_documented_examples(size: tuple[int, int], patches: int) -> None:
    counted = OpenAIPatchRule(multiplier=1).count(*size, Detail.AUTO)
    assert counted.tokens == patches


def test_openai_patch_documented_resize() -> None:
    counted = OpenAIPatchRule(multiplier=1).count(1800, 2400, Detail.AUTO)
    assert counted.processed_size == (1056, 1408)


@pytest.mark.parametrize(
    ("model", "multiplier"),
    [("gpt-4.1-mini", "1.62"), ("gpt-4.1-nano", "2.46"), ("o4-mini", "1.72")],
)
def test_patch_multipliers_round_up(model: str, multiplier: str) -> None:
    from decimal import ROUND_CEILING, Decimal

    card = load_catalog().get(model)
    expected = int((Decimal(1024) * Decimal(multiplier)).to_integral_value(ROUND_CEILING))
    assert count_image_tokens(card, 1024, 1024).tokens == expected


@pytest.mark.parametrize(
    ("size", "tokens"), [((200, 200), 54), ((1000, 1000), 1334), ((1092, 1092), 1590)]
)
def test_anthropic_documented_examples(size: tuple[int, int], tokens: int) -> None:
    assert AnthropicRule().count(*size, Detail.AUTO).tokens == tokens


def test_anthropic_downscales_long_edge_and_megapixels() -> None:
    counted = AnthropicRule().count(3136, 1000, Detail.AUTO)  # long edge over 1568
    w, h = counted.processed_size
    assert max(w, h) <= 1568 and w * h <= 1092 * 1092
    big = AnthropicRule().count(8000, 8000, Detail.AUTO)
    assert big.processed_size == (1092, 1092) and big.tokens == 1590


@pytest.mark.parametrize(
    ("size", "tokens"),
    [
        ((384, 384), 258),
        ((100, 384), 258),
        ((385, 384), 258),
        ((768, 768), 258),
        ((769, 768), 516),
        ((1536, 1536), 1032),
        ((2000, 1000), 258 * 6),
    ],
)
def test_gemini_tiles(size: tuple[int, int], tokens: int) -> None:
    assert GeminiTileRule().count(*size, Detail.AUTO).tokens == tokens


@pytest.mark.parametrize(
    ("detail", "tokens"),
    [
        (Detail.LOW, 280),
        (Detail.MEDIUM, 560),
        (Detail.HIGH, 1120),
        (Detail.ULTRA_HIGH, 2240),
        (Detail.AUTO, 1120),
    ],
)
def test_gemini3_media_resolution(detail: Detail, tokens: int) -> None:
    assert GeminiMediaResolutionRule().count(4000, 3000, detail).tokens == tokens


def test_qwen_vl_smart_resize() -> None:
    rule = QwenVLRule()
    assert rule.count(28 * 10, 28 * 20, Detail.AUTO).tokens == 200
    assert rule.count(10, 10, Detail.AUTO).tokens == 4  # min_pixels 56x56 -> 2x2
    big = rule.count(10000, 10000, Detail.AUTO)
    assert big.tokens <= 16384
    with pytest.raises(InvalidSizeError, match="aspect ratio"):
        rule.count(20100, 100, Detail.AUTO)


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(0, 10), (10, 0), (-5, 10), (10, -1), (2_000_000, 10)])
def test_bad_sizes_are_refused(size: tuple[int, int]) -> None:
    with pytest.raises(InvalidSizeError):
        GPT4O.count(*size, Detail.HIGH)


def test_unknown_detail_level() -> None:
    with pytest.raises(InvalidDetailError, match="expected one of low, medium, high"):
        parse_detail("ultra")
    assert parse_detail("ULTRA-HIGH") is Detail.ULTRA_HIGH


def test_detail_a_rule_does_not_define() -> None:
    with pytest.raises(InvalidDetailError, match="openai_tile"):
        GPT4O.count(100, 100, Detail.MEDIUM)


def test_huge_header_counts_without_trouble() -> None:
    assert GPT4O.count(100_000, 100_000, Detail.HIGH).tokens == 765
    assert OpenAIPatchRule(multiplier=1).count(100_000, 100_000, Detail.HIGH).tokens <= 1536


# --- properties -----------------------------------------------------------------------------

sides = st.integers(min_value=1, max_value=20_000)
ALL_RULES = [
    GPT4O,
    OpenAITileRule(base=2833, tile=5667),
    OpenAIPatchRule(multiplier=1),
    AnthropicRule(),
    GeminiTileRule(),
    GeminiMediaResolutionRule(),
]


@given(w=sides, h=sides)
def test_never_negative_and_low_never_above_high(w: int, h: int) -> None:
    for rule in ALL_RULES:
        low, high = rule.count(w, h, Detail.LOW).tokens, rule.count(w, h, Detail.HIGH).tokens
        assert 0 < low <= high
        assert rule.count(w, h, Detail.AUTO).tokens == high  # auto reserves the worst case


@given(w=sides, h=sides, dw=st.integers(0, 3000), dh=st.integers(0, 3000))
def test_gemini_tiles_monotone(w: int, h: int, dw: int, dh: int) -> None:
    rule = GeminiTileRule()
    assert rule.count(w + dw, h + dh, Detail.AUTO).tokens >= rule.count(w, h, Detail.AUTO).tokens


@given(
    w=st.integers(1, 1568), h=st.integers(1, 1568), dw=st.integers(0, 500), dh=st.integers(0, 500)
)
def test_anthropic_monotone_below_downscaling(w: int, h: int, dw: int, dh: int) -> None:
    rule = AnthropicRule()
    bigger = (w + dw, h + dh)
    if max(bigger) <= rule.max_long_edge and bigger[0] * bigger[1] <= rule.max_pixels:
        assert rule.count(*bigger, Detail.AUTO).tokens >= rule.count(w, h, Detail.AUTO).tokens


@given(w=sides, h=sides)
def test_anthropic_bounded_by_its_cap(w: int, h: int) -> None:
    assert AnthropicRule().count(w, h, Detail.AUTO).tokens <= 1590


@given(w=sides, h=sides, dw=st.integers(0, 2000), dh=st.integers(0, 2000))
def test_openai_patch_monotone_below_cap_and_capped(w: int, h: int, dw: int, dh: int) -> None:
    rule = OpenAIPatchRule(multiplier=1)
    small, big = (
        rule.count(w, h, Detail.AUTO).tokens,
        rule.count(w + dw, h + dh, Detail.AUTO).tokens,
    )
    assert big <= 1536 and small <= 1536
    if -(-(w + dw) // 32) * -(-(h + dh) // 32) <= 1536:
        assert big >= small


def test_openai_tile_is_not_monotone_and_we_do_not_pretend_it_is() -> None:
    # Scaling the shortest side to 768 means a taller image can cost fewer tiles.
    assert GPT4O.count(2048, 700, Detail.HIGH).tokens > GPT4O.count(2048, 1600, Detail.HIGH).tokens
