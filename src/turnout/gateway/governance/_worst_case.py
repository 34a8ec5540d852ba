"""The most an attempt can cost, before it is made: what a reservation holds.

Text: a token is at least one byte in every tokenizer turnout prices (byte-level BPE,
SentencePiece with byte fallback), so the body's bytes outside its images bound the text
tokens. Images: each counted by the model's own rule at the detail that will be sent;
an image whose size is unknown (a remote URL) counts as the largest the rule allows.
Output: the request's max_tokens, else the route's default cap (which is then sent to the
provider, so the bound holds), never above the model's own output limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from turnout.core import ModelCard, TurnoutError, Usage, count_image_tokens
from turnout.core import cost as price_of

from .._intake import ImageFact, RequestFacts

# Shapes probed for an image of unknown size: the rules saturate at large sizes, and the
# tile rules peak at particular aspect ratios.
_PROBE_SIZES = (
    (512, 512),
    (768, 768),
    (1024, 1024),
    (2048, 2048),
    (768, 2048),
    (2048, 768),
    (1536, 2048),
    (2048, 1536),
    (768, 1536),
    (1536, 768),
    (4096, 4096),
    (8192, 8192),
    (1000, 8192),
    (8192, 1000),
)


@dataclass(frozen=True)
class WorstCase:
    usage: Usage
    micros: int


_largest_seen: dict[tuple[str, str], int] = {}


def _largest(card: ModelCard, detail: str) -> int:
    key = (card.id, detail)
    if key not in _largest_seen:
        _largest_seen[key] = max(
            count_image_tokens(card, w, h, detail).tokens for w, h in _PROBE_SIZES
        )
    return _largest_seen[key]


def image_tokens(card: ModelCard, image: ImageFact) -> int:
    """Tokens `card` bills for `image`; 0 for a model without an image rule."""
    try:
        if image.width and image.height:
            return count_image_tokens(card, image.width, image.height, image.detail).tokens
        return _largest(card, image.detail)
    except TurnoutError:
        return 0


def data_uri_chars(image: ImageFact) -> int:
    return 4 * math.ceil(image.nbytes / 3) if image.width else 0


def text_bound(body_bytes: int, facts: RequestFacts) -> int:
    """Bytes of the request body outside its inline images: at least its text tokens."""
    return max(0, body_bytes - sum(data_uri_chars(i) for i in facts.images))


def worst_case(card: ModelCard, facts: RequestFacts, text: int, output_cap: int) -> WorstCase:
    images = sum(image_tokens(card, i) for i in facts.images)
    output = (
        output_cap if card.max_output_tokens is None else min(output_cap, card.max_output_tokens)
    )
    usage = Usage(text_input_tokens=text, image_input_tokens=images, output_tokens=output)
    return WorstCase(usage, ceil_micros(price_of(usage, card).exact))


def ceil_micros(amount: Decimal) -> int:
    return int((amount * 1_000_000).to_integral_value(rounding=ROUND_CEILING))
