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

from ._script import estimate_prompt_tokens

FLAT_IMAGE_TOKENS = 85  # an image whose size or model the catalog cannot price


def catalog_billing(catalog: Catalog) -> Callable[[dict[str, Any]], int]:
    """A `Script.bill` for OpenAI-format requests: body -> prompt tokens."""

    def bill(body: dict[str, Any]) -> int:
        texts: list[str] = []
        images = 0
        for message in body.get("messages") or []:
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
                continue
            for part in content if isinstance(content, list) else []:
                if part.get("type") == "text":
                    texts.append(part.get("text", ""))
                elif part.get("type") == "image_url":
                    images += _image_tokens(catalog, str(body.get("model", "")), part)
        return estimate_prompt_tokens(texts, 0) + images

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
