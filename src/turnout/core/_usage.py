"""What one call consumed, by modality, as a provider reports it."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ._errors import InvalidInputError


@dataclass(frozen=True)
class Usage:
    """Token counts of one call.

    `cached_input_tokens` is part of the input counts above it (OpenAI's convention:
    cached tokens are included in the prompt tokens) and is billed at the cached rate.
    """

    text_input_tokens: int = 0
    image_input_tokens: int = 0
    audio_input_tokens: int = 0
    video_input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0  # text output, reasoning included
    audio_output_tokens: int = 0
    images_generated: int = 0
    requests: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidInputError(
                    f"usage.{f.name} must be a non-negative integer, got {value!r}"
                )
        if self.cached_input_tokens > self.input_tokens:
            raise InvalidInputError(
                f"usage.cached_input_tokens ({self.cached_input_tokens}) exceeds the input "
                f"tokens ({self.input_tokens}) it is part of"
            )

    @property
    def input_tokens(self) -> int:
        return (
            self.text_input_tokens
            + self.image_input_tokens
            + self.audio_input_tokens
            + self.video_input_tokens
        )

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )
