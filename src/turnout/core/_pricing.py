"""Exact cost of a usage record: Decimal USD, settled to the micro-dollar."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from ._catalog import ModelCard, Price
from ._usage import Usage

MICRO = Decimal("0.000001")
_PER_MILLION = Decimal(1_000_000)


def to_micros(usd: Decimal) -> int:
    """USD as integer micro-dollars, the unit of storage."""
    return int((usd / MICRO).to_integral_value(ROUND_HALF_UP))


def from_micros(micros: int) -> Decimal:
    return (Decimal(micros) * MICRO).quantize(MICRO)


def micros_text(micros: int) -> str:
    """Micro-dollars as a USD string with six decimals ("0.946412"), as reports show money."""
    return f"{from_micros(micros):f}"


@dataclass(frozen=True)
class Cost:
    """Cost of one usage record. `lines` are exact; `total` is their sum rounded
    half-up to the micro-dollar once, so summing lines never drifts."""

    total: Decimal
    exact: Decimal
    lines: tuple[tuple[str, Decimal], ...]
    long_context: bool = False

    @property
    def micros(self) -> int:
        return to_micros(self.total)


def cost(usage: Usage, model: ModelCard | Price) -> Cost:
    price = model.price if isinstance(model, ModelCard) else model
    lc = price.long_context
    if lc is not None and usage.input_tokens <= lc.above_input_tokens:
        lc = None
    in_rate = lc.input if lc else price.input
    out_rate = lc.output if lc else price.output
    if lc:
        cached_rate = lc.cached_input if lc.cached_input is not None else in_rate
    else:
        cached_rate = price.cached_input if price.cached_input is not None else in_rate

    # Cached tokens are part of the input; bill them once, at the cached rate, taking
    # them from text first, then image, audio and video.
    uncached = {
        "text": usage.text_input_tokens,
        "image": usage.image_input_tokens,
        "audio": usage.audio_input_tokens,
        "video": usage.video_input_tokens,
    }
    remaining = usage.cached_input_tokens
    for modality, count in uncached.items():
        taken = min(count, remaining)
        uncached[modality] = count - taken
        remaining -= taken

    def rate(specific: Decimal | None) -> Decimal:
        # Long-context surcharges apply to every input modality the provider prices alike.
        return in_rate if specific is None or lc else specific

    lines = [
        ("text input", uncached["text"] * in_rate),
        ("image input", uncached["image"] * rate(price.image_input)),
        ("audio input", uncached["audio"] * rate(price.audio_input)),
        ("video input", uncached["video"] * rate(price.video_input)),
        ("cached input", usage.cached_input_tokens * cached_rate),
        ("output", usage.output_tokens * out_rate),
        ("audio output", usage.audio_output_tokens * (price.audio_output or out_rate)),
    ]
    exact = [(name, amount / _PER_MILLION) for name, amount in lines if amount]
    if usage.images_generated and price.per_image_output:
        exact.append(("generated images", usage.images_generated * price.per_image_output))
    if usage.requests and price.per_request:
        exact.append(("per request", usage.requests * price.per_request))
    unrounded = sum((amount for _, amount in exact), Decimal(0))
    return Cost(
        total=unrounded.quantize(MICRO, ROUND_HALF_UP),
        exact=unrounded,
        lines=tuple(exact),
        long_context=lc is not None,
    )
