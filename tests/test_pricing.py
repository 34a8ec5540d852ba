from __future__ import annotations

from decimal import Decimal

import pytest

from turnout.core import InvalidInputError, Usage, cost, from_micros, load_catalog, to_micros

CATALOG = load_catalog()


def test_text_and_output_cost_exact() -> None:
    # gpt-4o: $2.50 in, $10.00 out per million.
    c = cost(Usage(text_input_tokens=1000, output_tokens=500), CATALOG.get("gpt-4o"))
    assert c.total == Decimal("0.007500")
    assert c.micros == 7500


def test_image_tokens_are_input_tokens() -> None:
    c = cost(Usage(image_input_tokens=765), CATALOG.get("gpt-4o"))
    assert c.exact == Decimal("0.0019125")
    assert c.total == Decimal("0.001913")  # half-up to the micro-dollar, once


def test_cached_tokens_are_part_of_input_billed_at_cached_rate() -> None:
    model = CATALOG.get("gpt-4o")  # cached $1.25
    c = cost(Usage(text_input_tokens=1_000_000, cached_input_tokens=400_000), model)
    assert c.total == Decimal("600000") * Decimal("2.50") / 10**6 + Decimal("0.5")


def test_audio_input_has_its_own_rate() -> None:
    model = CATALOG.get("gemini-2.5-flash")  # text $0.30, audio $1.00
    c = cost(Usage(text_input_tokens=1_000_000, audio_input_tokens=1_000_000), model)
    assert c.total == Decimal("1.30")


def test_long_context_rates_apply_to_the_whole_request() -> None:
    model = CATALOG.get("gemini-2.5-pro")
    short = cost(Usage(text_input_tokens=200_000, output_tokens=1000), model)
    long = cost(Usage(text_input_tokens=200_001, output_tokens=1000), model)
    assert short.total == Decimal("0.25") + Decimal("0.01")
    assert not short.long_context and long.long_context
    assert long.exact == Decimal(200_001) * Decimal("2.50") / 10**6 + Decimal("0.015")
    assert long.total == Decimal("0.515003")  # 0.5150025, half-up


def test_per_request_price_for_encoders() -> None:
    model = CATALOG.get("google/siglip2-base-patch16-256")
    c = cost(Usage(requests=1000), model)
    assert c.exact == Decimal("0.0006")


def test_sum_of_parts_is_rounded_once() -> None:
    model = CATALOG.get("gpt-4.1-nano")  # $0.10 in: 1 token = $0.0000001
    c = cost(Usage(text_input_tokens=5, image_input_tokens=5), model)
    assert c.exact == Decimal("0.000001")
    assert c.total == Decimal("0.000001")


def test_micros_round_trip() -> None:
    assert to_micros(Decimal("1.2345675")) == 1234568
    assert from_micros(1234568) == Decimal("1.234568")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"text_input_tokens": -1},
        {"output_tokens": 1.5},
        {"cached_input_tokens": 10, "text_input_tokens": 5},
    ],
)
def test_invalid_usage(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        Usage(**kwargs)  # type: ignore[arg-type]


def test_usage_adds() -> None:
    total = Usage(text_input_tokens=1, output_tokens=2) + Usage(image_input_tokens=3)
    assert (total.input_tokens, total.output_tokens, total.requests) == (4, 2, 2)
