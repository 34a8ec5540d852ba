"""Google's native Gemini API (`generateContent`, `streamGenerateContent`)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from turnout.core import (
    InvalidImageError,
    PayloadTooLargeError,
    ProviderError,
    UnsupportedMediaError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
    sniff_format,
)

from ._base import Completion, Delta, Provider, ProviderCall, StreamEnd, StreamEvent
from ._gemini_request import InlineData, gemini_request, remote_image_urls
from ._gemini_response import GeminiStream, completion_from_gemini
from ._http import (
    STATUS_ERRORS,
    HttpReply,
    UpstreamClient,
    error_from_response,
    iter_lines,
    load_json,
    read_reply,
    transport_errors,
)
from ._media import check_public_url

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
_MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024  # Gemini's limit on a whole inline request

# Google's canonical error `status` names, which say more than the HTTP status does.
_BY_STATUS: dict[str, type[ProviderError]] = {
    "RESOURCE_EXHAUSTED": UpstreamRateLimited,
    "UNAVAILABLE": UpstreamUnavailable,
    "INTERNAL": UpstreamUnavailable,
    "DEADLINE_EXCEEDED": UpstreamTimeout,
    "INVALID_ARGUMENT": UpstreamRejected,
    "PERMISSION_DENIED": UpstreamRejected,
    "UNAUTHENTICATED": UpstreamRejected,
    "NOT_FOUND": UpstreamRejected,
    "FAILED_PRECONDITION": UpstreamRejected,
}
_IMAGE_MIME = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "heic": "image/heic",
    "heif": "image/heif",
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def _error_type(body: Any) -> tuple[str | None, str]:
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return None, ""
    status = err.get("status")
    return (str(status) if status else None), str(err.get("message") or "")


def retry_delay(body: Any) -> float | None:
    """Seconds from a `google.rpc.RetryInfo` detail ("37s"), Gemini's usual 429 hint."""
    err = body.get("error") if isinstance(body, dict) else None
    details = err.get("details") if isinstance(err, dict) else None
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


class Gemini(Provider):
    api = "gemini"

    def __init__(
        self,
        name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 200,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
        allow_private_image_urls: bool = False,
    ) -> None:
        super().__init__(name)
        auth = {"x-goog-api-key": api_key} if api_key else {}
        # Sent per API call, never as client defaults, so fetching a caller's image URL
        # with the same pooled client cannot leak the key to the image's host.
        self._headers = {"content-type": "application/json", **auth, **(headers or {})}
        self._client = UpstreamClient(
            base_url or DEFAULT_BASE_URL, {}, max_connections=max_connections
        )
        self._max_image_bytes = max_image_bytes
        self._allow_private = allow_private_image_urls

    async def aclose(self) -> None:
        await self._client.aclose()

    async def complete(self, call: ProviderCall) -> Completion:
        body = await self._request_body(call)
        with transport_errors(self.name):
            response = await self._client.post(
                _path(call.model, "generateContent"),
                orjson.dumps(body),
                call.timeout,
                self._headers,
            )
        if response.status >= 400:
            raise self._error(response)
        return completion_from_gemini(self.name, load_json(self.name, response.content), call.model)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamEvent]:
        body = await self._request_body(call)
        answer = GeminiStream(self.name, call.model)
        with transport_errors(self.name):
            async with self._client.stream(
                "POST",
                _path(call.model, "streamGenerateContent") + "?alt=sse",
                call.timeout,
                body=orjson.dumps(body),
                headers=self._headers,
            ) as response:
                if response.status >= 400:
                    raise self._error(await read_reply(response))
                async for line in iter_lines(response):
                    if not line.startswith("data:"):
                        continue
                    data = load_json(self.name, line[5:].strip().encode())
                    if isinstance(data, dict) and "error" in data:
                        raise self._stream_error(data)
                    for chunk in answer.feed(data):
                        yield Delta(chunk)
        if answer.finish is None:
            raise UpstreamUnavailable(
                f"{self.name}: stream dropped before a finishReason", provider=self.name
            )
        yield StreamEnd(
            usage=answer.usage, finish_reason=answer.finish, image_tokens_reported=answer.split
        )

    def _error(self, response: HttpReply) -> ProviderError:
        error = error_from_response(self.name, response, _error_type, _BY_STATUS)
        if error.retry_after is None:
            with contextlib.suppress(orjson.JSONDecodeError):
                error.retry_after = retry_delay(orjson.loads(response.content))
        return error

    def _stream_error(self, data: dict[str, Any]) -> ProviderError:
        """An error object sent in place of a chunk, after the 200 went out."""
        kind, message = _error_type(data)
        code = data["error"].get("code") if isinstance(data["error"], dict) else None
        cls = _BY_STATUS.get(kind or "") or STATUS_ERRORS.get(code if isinstance(code, int) else 0)
        return (cls or UpstreamUnavailable)(
            f"{self.name}: error mid-stream: {message or kind or 'unknown'}",
            provider=self.name,
            retry_after=retry_delay(data),
            code=kind,
        )

    async def _request_body(self, call: ProviderCall) -> dict[str, Any]:
        urls = remote_image_urls(call.request)
        results = await asyncio.gather(
            *(self._fetch_image(url, call.timeout) for url in urls), return_exceptions=True
        )
        fetched: dict[str, InlineData] = {}
        for url, result in zip(urls, results, strict=True):
            if isinstance(result, BaseException):
                raise result
            fetched[url] = result
        return gemini_request(call.request, fetched)

    async def _fetch_image(self, url: str, timeout: float) -> InlineData:
        """A caller's image URL, fetched and inlined: Gemini fetches no arbitrary URLs."""
        limit = self._max_image_bytes
        data = bytearray()
        try:
            # Redirects are followed by hand so every hop passes the public-address check.
            for _ in range(_MAX_REDIRECTS + 1):
                if not self._allow_private:
                    await check_public_url(url)
                async with self._client.stream("GET", url, timeout) as response:
                    if response.status in _REDIRECTS and "location" in response.headers:
                        url = str(response.url.join(URL(response.headers["location"])))
                        continue
                    if response.status >= 400:
                        raise InvalidImageError(
                            f"image {url!r} could not be fetched: its host answered "
                            f"{response.status}"
                        )
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise _too_large(url, limit)
                    async for piece in response.content.iter_any():
                        data += piece
                        if len(data) > limit:
                            raise _too_large(url, limit)
                    break
            else:
                raise InvalidImageError(f"image {url!r} redirects more than {_MAX_REDIRECTS} times")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise InvalidImageError(
                f"image {url!r} could not be fetched ({type(exc).__name__}: {exc})"
            ) from exc
        kind = sniff_format(bytes(data[:32]))
        if kind is None:
            raise InvalidImageError(f"image {url!r} is not an image ({len(data)} bytes)")
        if kind not in _IMAGE_MIME:
            raise UnsupportedMediaError(
                f"image {url!r} is {kind.upper()}; Gemini takes PNG, JPEG, WEBP, HEIC or HEIF"
            )
        return InlineData(_IMAGE_MIME[kind], base64.b64encode(data).decode("ascii"))


def _too_large(url: str, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"image {url!r} is over the {limit}-byte limit for inline images")


def _path(model: str, method: str) -> str:
    # Callers may write Google's resource name ("models/gemini-2.5-flash") or the bare id.
    return f"/v1beta/models/{quote(model.removeprefix('models/'), safe='')}:{method}"
