"""Searching a collection by text or image through the encoder it was built with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from turnout.core import InvalidInputError

from ._collection import Collection
from ._corpus import decode_image
from ._types import MODALITIES, Hit


def search(
    collection: Collection,
    encoder: Any,
    *,
    tenant: str,
    text: str | None = None,
    image: Path | str | None = None,
    k: int = 10,
    modality: str | None = None,
    filters: dict[str, Any] | None = None,
    max_pixels: int = 64_000_000,
) -> list[Hit]:
    """Text-to-image, image-to-image or image-to-text: embed the query, search the tenant's items.

    `modality` restricts the hits to `image`, `page` or `text` items.
    """
    if (text is None) == (image is None):
        raise InvalidInputError("give a text query or an image query (--image), not both")
    if modality is not None and modality not in MODALITIES:
        raise InvalidInputError(f"modality {modality!r}: expected one of {', '.join(MODALITIES)}")
    collection.check_encoder(encoder)
    if text is not None:
        if not text.strip():
            raise InvalidInputError("the query text is empty")
        vector = encoder.embed_texts([text])[0]
    else:
        assert image is not None
        path = Path(image).expanduser()
        if not path.is_file():
            raise InvalidInputError(f"{image}: no such image file")
        vector = encoder.embed_images([decode_image(path, max_pixels)])[0]
    wanted = dict(filters or {})
    if modality is not None:
        wanted["modality"] = modality
    return collection.search(vector, tenant=tenant, k=k, filters=wanted)
