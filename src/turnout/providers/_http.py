"""The HTTP boundary shared by providers: pooled clients, and foreign errors converted once."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
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


@dataclass(frozen=True)
class HttpReply:
    """A finished response: what error mapping and JSON parsing need, nothing more."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    reason: str = ""


class UpstreamClient:
    """A pooled aiohttp session to one base URL.

    aiohttp rather than httpx on this path: under load, httpx's connection pool polls
    every idle socket on every request and cost about two thirds of the gateway's CPU
    (benches/gateway_overhead.py). The session is made on first use, inside the running
    event loop, and remade if the loop changes (tests that run several loops).
    """

    def __init__(
        self, base_url: str, headers: Mapping[str, str], *, max_connections: int = 200
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _current(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, ttl_dns_cache=300, keepalive_timeout=30
            )
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                connector=connector,
                read_bufsize=2**20,
                auto_decompress=True,
            )
            self._loop = loop
        return self._session

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    async def post(
        self, path: str, body: bytes, timeout: float, headers: Mapping[str, str] | None = None
    ) -> HttpReply:
        """POST and read the whole answer; wrap in transport_errors() to convert failures."""
        async with self._current().post(
            self._url(path), data=body, headers=headers, timeout=_total(timeout)
        ) as response:
            content = await response.read()
            return HttpReply(response.status, response.headers, content, response.reason or "")

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        timeout: float,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A response whose body is read as it arrives; `timeout` bounds each read."""
        async with self._current().request(
            method,
            self._url(path),
            data=body,
            headers=headers,
            timeout=_per_read(timeout),
            allow_redirects=False,
        ) as response:
            yield response

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def _total(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=seconds, sock_connect=min(seconds, 10.0))


def _per_read(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=min(seconds, 10.0), sock_read=seconds)


async def read_reply(response: aiohttp.ClientResponse) -> HttpReply:
    return HttpReply(
        response.status, response.headers, await response.read(), response.reason or ""
    )


async def iter_lines(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """The body's lines as they arrive (SSE), without aiohttp's per-line length limit."""
    pending = b""
    async for piece in response.content.iter_any():
        pending += piece
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.rstrip(b"\r").decode("utf-8", "replace")
    if pending:
        yield pending.rstrip(b"\r").decode("utf-8", "replace")


@contextmanager
def transport_errors(provider: str) -> Iterator[None]:
    """aiohttp's and asyncio's exceptions become turnout's, by type."""
    try:
        yield
    except TimeoutError as exc:  # aiohttp's timeout errors are TimeoutError too
        raise UpstreamTimeout(
            f"{provider}: no answer in time ({type(exc).__name__})", provider=provider
        ) from exc
    except aiohttp.ClientError as exc:
        raise UpstreamUnavailable(
            f"{provider}: connection failed ({type(exc).__name__}: {exc})", provider=provider
        ) from exc


def retry_after(headers: Mapping[str, str]) -> float | None:
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
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, parsed.timestamp() - time.time())


def error_from_response(
    provider: str,
    response: HttpReply,
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
    cls = by_type.get(kind or "") or STATUS_ERRORS.get(response.status)
    if cls is None:
        cls = UpstreamUnavailable if response.status >= 500 else UpstreamRejected
    reason = message or response.reason or "error"
    return cls(
        f"{provider}: upstream answered {response.status}: {reason}",
        provider=provider,
        status=response.status,
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
