"""One exception tree for turnout.

    TurnoutError
    ├── ConfigError            a settings or catalog file is wrong (names file and key)
    │   └── CatalogError       a catalog entry is malformed
    ├── NotFoundError
    │   └── UnknownModelError  a model id the catalog does not know
    ├── InvalidInputError      bad input from a caller; the message says what and where
    │   ├── InvalidImageError  missing, corrupt, empty or unreadable image
    │   │   └── UnsupportedMediaError  a real image of a type the target does not take
    │   ├── InvalidSizeError   a zero, negative or absurd pixel size
    │   ├── InvalidDetailError a detail/resolution level the rule does not define
    │   └── PayloadTooLargeError       a request body over the configured limit
    └── ProviderError          an upstream model provider failed (carries provider, status)
        ├── UpstreamTimeout        no answer within the per-call timeout
        ├── UpstreamRateLimited    429; `retry_after` seconds when the upstream said
        ├── UpstreamUnavailable    5xx, connection refused or reset, stream dropped
        ├── UpstreamRejected       the upstream refused the request (4xx); not retried
        └── UpstreamBadResponse    a body that is not the provider's format

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


class UnsupportedMediaError(InvalidImageError):
    """An image (or other media) of a type the target cannot take."""


class PayloadTooLargeError(InvalidInputError):
    """A request body over the configured size limit."""


class ProviderError(TurnoutError):
    """An upstream provider call failed. `retryable` says whether the same call may work."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.retry_after = retry_after
        self.code = code


class UpstreamTimeout(ProviderError):
    pass


class UpstreamRateLimited(ProviderError):
    pass


class UpstreamUnavailable(ProviderError):
    pass


class UpstreamRejected(ProviderError):
    retryable = False


class UpstreamBadResponse(ProviderError):
    pass
