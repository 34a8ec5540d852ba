"""The HTTP boundary shared by providers: pooled clients, and foreign errors converted once."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
import orjson

from turnout.core import (
    ProviderError,
    UpstreamBadResponse,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

# By HTTP status, when the provider's error body names no more specific type.
STATUS_ERRORS: dict[int, type[ProviderError]] = {
    400: UpstreamRejected,
    401: UpstreamRejected,
    403: UpstreamRejected,
    404: UpstreamRejected,
    408: UpstreamTimeout,
    409: UpstreamRejected,
    413: UpstreamRejected,
    415: UpstreamRejected,
    422: UpstreamRejected,
    429: UpstreamRateLimited,
    500: UpstreamUnavailable,
    502: UpstreamUnavailable,
    503: UpstreamUnavailable,
    504: UpstreamTimeout,
    529: UpstreamUnavailable,  # Anthropic: overloaded
}


def make_client(
    base_url: str, headers: Mapping[str, str], *, max_connections: int = 200
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        headers=dict(headers),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        timeout=httpx.Timeout(60.0),
    )


def timeout_for(seconds: float) -> httpx.Timeout:
    return httpx.Timeout(seconds, connect=min(seconds, 10.0))


@contextmanager
def transport_errors(provider: str) -> Iterator[None]:
    """httpx's exceptions become turnout's, by type."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(
            f"{provider}: no answer in time ({type(exc).__name__})", provider=provider
        ) from exc
    except (httpx.TransportError, httpx.StreamError) as exc:
        raise UpstreamUnavailable(
            f"{provider}: connection failed ({type(exc).__name__}: {exc})", provider=provider
        ) from exc


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait, from `retry-after-ms`, `retry-after` (seconds or an HTTP date)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def error_from_response(
    provider: str,
    response: httpx.Response,
    body_type: Callable[[Any], tuple[str | None, str]],
    by_type: Mapping[str, type[ProviderError]],
) -> ProviderError:
    """A ProviderError for an error response: by the body's error type, else by status.

    `body_type(parsed_json)` returns (error type, message) in the provider's own format.
    """
    try:
        parsed = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        parsed = None
    kind, message = body_type(parsed) if parsed is not None else (None, "")
    cls = by_type.get(kind or "") or STATUS_ERRORS.get(response.status_code)
    if cls is None:
        cls = UpstreamUnavailable if response.status_code >= 500 else UpstreamRejected
    reason = message or response.reason_phrase or "error"
    return cls(
        f"{provider}: upstream answered {response.status_code}: {reason}",
        provider=provider,
        status=response.status_code,
        retry_after=retry_after(response.headers),
        code=kind,
    )


def load_json(provider: str, content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise UpstreamBadResponse(
            f"{provider}: response is not JSON ({exc})", provider=provider
        ) from exc


def malformed(provider: str, what: str) -> UpstreamBadResponse:
    return UpstreamBadResponse(f"{provider}: malformed response: {what}", provider=provider)
