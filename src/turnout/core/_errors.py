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
    │       └── ImageTokenCapError     a request's image tokens over its tenant's cap
    ├── AuthenticationError    no API key, or one that is unknown or revoked (401)
    ├── PermissionDeniedError  a valid key asking for what its tenant may not use (403)
    ├── QuotaExceededError     a limit says not now (429); `retry_after` seconds
    │   ├── RateLimitExceededError  requests, tokens or concurrency per tenant or user
    │   └── BudgetExceededError     a tenant's daily or monthly budget has no room
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


class ImageTokenCapError(PayloadTooLargeError):
    """A request's images count more tokens than its tenant's per-request cap."""

    def __init__(self, message: str, *, counted: int, cap: int) -> None:
        super().__init__(message)
        self.counted = counted
        self.cap = cap


class AuthenticationError(TurnoutError):
    """No API key, or a key that is unknown or revoked."""


class PermissionDeniedError(TurnoutError):
    """A valid key asking for a route, model or record its tenant may not use."""


class QuotaExceededError(TurnoutError):
    """A limit refuses the request for now; `retry_after` says when to try again (seconds)."""

    code = "quota_exceeded"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = dict(headers or {})


class RateLimitExceededError(QuotaExceededError):
    """Requests, tokens or concurrent requests per tenant or user over their limit."""

    code = "rate_limit_exceeded"


class BudgetExceededError(QuotaExceededError):
    """A tenant's daily or monthly budget cannot cover this request's worst-case cost."""

    code = "budget_exceeded"


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
