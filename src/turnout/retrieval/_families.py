"""Dual-encoder families: how each one's text must be tokenized, read from its model card.

A checkpoint's family comes from `model_type` in its config.json, so a new checkpoint of
a known family (another CLIP size, a SigLIP fine-tune) needs no code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ._errors import EncoderLoadError


@dataclass(frozen=True)
class EncoderFamily:
    """What differs between families once the model and processors are loaded."""

    name: str
    model_types: tuple[str, ...]
    # SigLIP reads the text embedding at the last position, so it needs fixed-length padding.
    text_padding: Literal["longest", "max_length"]
    default_max_length: int
    model_card: str

    def max_text_length(self, config: Any) -> int:
        """Token limit of the text tower: its position table, else the card's figure."""
        text_config = getattr(config, "text_config", None)
        limit = getattr(text_config, "max_position_embeddings", None)
        return int(limit) if isinstance(limit, int) and limit > 0 else self.default_max_length


CLIP = EncoderFamily(
    name="clip",
    model_types=("clip",),
    text_padding="longest",
    default_max_length=77,
    model_card="https://huggingface.co/openai/clip-vit-base-patch32",
)
SIGLIP = EncoderFamily(
    name="siglip",
    model_types=("siglip",),
    text_padding="max_length",
    default_max_length=64,
    model_card="https://huggingface.co/google/siglip-base-patch16-224",
)
SIGLIP2 = EncoderFamily(
    name="siglip2",
    model_types=("siglip2",),
    text_padding="max_length",
    default_max_length=64,
    model_card="https://huggingface.co/google/siglip2-base-patch16-256",
)

FAMILIES: tuple[EncoderFamily, ...] = (CLIP, SIGLIP, SIGLIP2)


def family_for(model_type: str | None, where: str) -> EncoderFamily:
    """The family of a checkpoint whose config.json says `model_type`."""
    for family in FAMILIES:
        if model_type in family.model_types:
            return family
    known = ", ".join(t for f in FAMILIES for t in f.model_types)
    raise EncoderLoadError(
        f"{where}: model_type {model_type!r} is not an image-text dual encoder turnout "
        f"knows (known: {known}); pass a CLIP, SigLIP or SigLIP 2 checkpoint"
    )
