"""Token accounting for one model: images and media turned into a usage record."""

from __future__ import annotations

import math

from ._catalog import ModelCard
from ._errors import InvalidInputError
from ._image_tokens import Detail, ImageTokens, parse_detail


def count_image_tokens(
    model: ModelCard, width: int, height: int, detail: str | Detail = Detail.AUTO
) -> ImageTokens:
    """Input tokens `model` bills for one image of `width` x `height` pixels.

    `auto` counts as the most expensive level the provider may pick, so a reservation
    built on it never under-reserves.
    """
    level = parse_detail(detail)
    if model.image_tokens is None or model.kind != "chat" or not model.accepts("image"):
        raise InvalidInputError(
            f"model {model.id!r} takes no images as chat input, so it has no image-token rule"
        )
    return model.image_tokens.count(width, height, level)


def media_tokens(model: ModelCard, modality: str, seconds: float) -> int:
    """Input tokens for `seconds` of audio or video, by the model's per-second rate."""
    rate = {"audio": model.audio_tokens_per_second, "video": model.video_tokens_per_second}.get(
        modality
    )
    if rate is None:
        raise InvalidInputError(f"model {model.id!r} has no {modality} token rate in the catalog")
    if seconds < 0:
        raise InvalidInputError(f"{modality} duration must not be negative, got {seconds}")
    return math.ceil(seconds * rate)
