"""Anthropic's Messages API (`POST /v1/messages`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from turnout.core import (
    ProviderError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

from ._anthropic_format import (
    DEFAULT_MAX_TOKENS,
    AnthropicStream,
    anthropic_request,
    completion_from_anthropic,
)
from ._base import Completion, Delta, Provider, ProviderCall, StreamEnd, StreamEvent
from ._http import (
    UpstreamClient,
    error_from_response,
    iter_lines,
    load_json,
    read_reply,
    transport_errors,
)

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"

# Anthropic's error body `error.type` values.
_BY_TYPE: dict[str, type[ProviderError]] = {
    "rate_limit_error": UpstreamRateLimited,
    "overloaded_error": UpstreamUnavailable,
    "api_error": UpstreamUnavailable,
    "timeout_error": UpstreamTimeout,
    "invalid_request_error": UpstreamRejected,
    "authentication_error": UpstreamRejected,
    "permission_error": UpstreamRejected,
    "not_found_error": UpstreamRejected,
    "request_too_large": UpstreamRejected,
    "billing_error": UpstreamRejected,
}


def _error_type(body: Any) -> tuple[str | None, str]:
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return None, ""
    kind = err.get("type")
    return (str(kind) if kind else None), str(err.get("message") or "")


class Anthropic(Provider):
    api = "anthropic"

    def __init__(
        self,
        name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 200,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        super().__init__(name)
        auth = {"x-api-key": api_key} if api_key else {}
        self._client = UpstreamClient(
            base_url or DEFAULT_BASE_URL,
            {
                "content-type": "application/json",
                "anthropic-version": API_VERSION,
                **auth,
                **(headers or {}),
            },
            max_connections=max_connections,
        )
        self._default_max_tokens = default_max_tokens

    async def aclose(self) -> None:
        await self._client.aclose()

    def _body(self, call: ProviderCall) -> dict[str, Any]:
        return anthropic_request(
            call.request, call.model, default_max_tokens=self._default_max_tokens
        )

    async def complete(self, call: ProviderCall) -> Completion:
        body = self._body(call)
        with transport_errors(self.name):
            response = await self._client.post("/v1/messages", orjson.dumps(body), call.timeout)
        if response.status >= 400:
            raise error_from_response(self.name, response, _error_type, _BY_TYPE)
        return completion_from_anthropic(
            self.name, load_json(self.name, response.content), call.model
        )

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamEvent]:
        body = {**self._body(call), "stream": True}
        answer = AnthropicStream(self.name, call.model)
        with transport_errors(self.name):
            async with self._client.stream(
                "POST", "/v1/messages", call.timeout, body=orjson.dumps(body)
            ) as response:
                if response.status >= 400:
                    reply = await read_reply(response)
                    raise error_from_response(self.name, reply, _error_type, _BY_TYPE)
                async for line in iter_lines(response):
                    # Each data line names its event in "type"; the `event:` lines repeat it.
                    if not line.startswith("data:"):
                        continue
                    data = load_json(self.name, line[5:].strip().encode())
                    if isinstance(data, dict) and data.get("type") == "error":
                        raise self._stream_error(data)
                    for chunk in answer.feed(data):
                        yield Delta(chunk)
                    if answer.stopped:
                        break
        if not answer.stopped:
            raise UpstreamUnavailable(
                f"{self.name}: stream ended before message_stop", provider=self.name
            )
        yield StreamEnd(usage=answer.usage, finish_reason=answer.finish)

    def _stream_error(self, data: dict[str, Any]) -> ProviderError:
        """An `event: error` sent after the 200 went out (overloaded, most often)."""
        kind, message = _error_type(data)
        cls = _BY_TYPE.get(kind or "", UpstreamUnavailable)
        return cls(
            f"{self.name}: error mid-stream: {message or kind or 'unknown'}",
            provider=self.name,
            code=kind,
        )
