"""One exception tree for turnout.

    TurnoutError
    ├── ConfigError            a settings or catalog file is wrong (names file and key)
    │   └── CatalogError       a catalog entry is malformed
    ├── NotFoundError
    │   └── UnknownModelError  a model id the catalog does not know
    └── InvalidInputError      bad input from a caller; the message says what and where
        ├── InvalidImageError  missing, corrupt, empty or unreadable image
        ├── InvalidSizeError   a zero, negative or absurd pixel size
        └── InvalidDetailError a detail/resolution level the rule does not define

Foreign exceptions (pydantic, yaml, OSError) are converted once, where they enter,
with `raise ... from exc`.
"""

from __future__ import annotations


class TurnoutError(Exception):
    """Base of every error turnout raises on purpose."""


class ConfigError(TurnoutError):
    """A settings file, environment variable or catalog file is invalid."""


class CatalogError(ConfigError):
    """A model catalog file or entry is malformed."""


class NotFoundError(TurnoutError):
    """Something named by the caller does not exist."""


class UnknownModelError(NotFoundError):
    def __init__(self, model: str, suggestions: list[str] | None = None) -> None:
        self.model = model
        self.suggestions = suggestions or []
        hint = f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(
            f"unknown model {model!r}{hint} (`turnout catalog list` shows every model)"
        )


class InvalidInputError(TurnoutError):
    """The caller's input is wrong; the message says what and how to fix it."""


class InvalidImageError(InvalidInputError):
    """An image that cannot be read, is empty, or is of an unsupported type."""


class InvalidSizeError(InvalidInputError):
    """An image size that is zero, negative or beyond any real image."""


class InvalidDetailError(InvalidInputError):
    """A detail or resolution level that the model's image-token rule does not define."""
