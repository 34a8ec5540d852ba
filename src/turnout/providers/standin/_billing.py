"""Prompt usage the way a real provider bills it: images by the catalog's image-token rule
for the model asked (sizes read from the data URIs), text at about four characters a
token. Without it the stand-in counts a flat 85 tokens an image, which understates what a
large image costs; the demo turns this on so its bills look like real ones."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from turnout.core import Catalog, TurnoutError, count_image_tokens, read_image_size

from ._openai_format import read_parts
from ._script import estimate_prompt_tokens

FLAT_IMAGE_TOKENS = 85  # an image whose size or model the catalog cannot price


def catalog_billing(catalog: Catalog) -> Callable[[dict[str, Any]], int]:
    """A `Script.bill` for OpenAI-format requests: body -> prompt tokens."""

    def bill(body: dict[str, Any]) -> int:
        texts, images = read_parts(body)
        model = str(body.get("model", ""))
        return estimate_prompt_tokens(texts, 0) + sum(
            _image_tokens(catalog, model, part) for part in images
        )

    return bill


def _image_tokens(catalog: Catalog, model: str, part: dict[str, Any]) -> int:
    image = part.get("image_url") or {}
    url = str(image.get("url", ""))
    if not url.startswith("data:"):
        return FLAT_IMAGE_TOKENS
    try:
        data = base64.b64decode(url.partition(",")[2], validate=True)
        size = read_image_size(data)
        card = catalog.get(model)
        detail = str(image.get("detail") or "auto")
        return count_image_tokens(card, size.width, size.height, detail).tokens
    except (binascii.Error, ValueError, TurnoutError):
        return FLAT_IMAGE_TOKENS
