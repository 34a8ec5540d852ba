"""Errors of the retrieval layer, each a branch of core's one exception tree.

    TurnoutError (core)
    ├── ConfigError
    │   └── EncoderLoadError        a model that cannot be loaded (offline, corrupt, wrong family)
    ├── NotFoundError
    │   ├── UnknownEncoderError     a spec that names no local directory or hub repository
    │   └── DatasetNotFoundError    dataset files that are not where the spec says
    └── InvalidInputError
        ├── DatasetError            a caption file with a bad row, duplicate ids, no captions
        └── InvalidImageError
            └── UnreadableImageError  an image that cannot be opened or decoded (knows its index)

Foreign errors (OSError, PIL, huggingface_hub, transformers) are converted where they
enter, by type, with `raise ... from exc`.
"""

from __future__ import annotations

from turnout.core import ConfigError, InvalidImageError, InvalidInputError, NotFoundError


class EncoderLoadError(ConfigError):
    """An encoder spec was understood but its model could not be loaded."""


class UnknownEncoderError(NotFoundError):
    """An encoder spec that names neither a local model directory nor a hub repository."""


class DatasetNotFoundError(NotFoundError):
    """The files a dataset spec needs are missing; the message says which and where."""


class DatasetError(InvalidInputError):
    """A dataset file is malformed; the message names the file and the row."""


class UnreadableImageError(InvalidImageError):
    """An image that cannot be opened or decoded.

    `index` is its position in the sequence given to the encoder, so a caller that
    skips unreadable images knows which one to drop.
    """

    def __init__(self, source: str, reason: str, index: int | None = None) -> None:
        self.source = source
        self.reason = reason
        self.index = index
        super().__init__(f"{source}: cannot read image: {reason}")
