"""Any OpenAI-compatible chat-completions endpoint: OpenAI, Azure OpenAI, vLLM, Ollama,
llama.cpp server, Together and the like."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from turnout.core import (
    ProviderError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
    Usage,
)

from ._base import Completion, Delta, Provider, ProviderCall, StreamEnd, StreamEvent
from ._http import (
    UpstreamClient,
    error_from_response,
    iter_lines,
    load_json,
    malformed,
    read_reply,
    transport_errors,
)

# OpenAI's error body `type`/`code` values that say more than the status does.
_BY_TYPE: dict[str, type[ProviderError]] = {
    "insufficient_quota": UpstreamRejected,  # a 429 that waiting will not fix
    "rate_limit_exceeded": UpstreamRateLimited,
    "server_error": UpstreamUnavailable,
    "context_length_exceeded": UpstreamRejected,
}


def _error_type(body: Any) -> tuple[str | None, str]:
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return None, ""
    kind = err.get("code") if err.get("code") in _BY_TYPE else err.get("type")
    return (str(kind) if kind else None), str(err.get("message") or "")


def usage_from_openai(raw: Any) -> Usage:
    """OpenAI's usage block; image tokens are folded into prompt_tokens there."""
    if not isinstance(raw, dict):
        return Usage()
    prompt = int(raw.get("prompt_tokens") or 0)
    details = raw.get("prompt_tokens_details") or {}
    out_details = raw.get("completion_tokens_details") or {}
    audio_in = int(details.get("audio_tokens") or 0)
    audio_out = int(out_details.get("audio_tokens") or 0)
    completion = int(raw.get("completion_tokens") or 0)
    return Usage(
        text_input_tokens=max(0, prompt - audio_in),
        audio_input_tokens=audio_in,
        cached_input_tokens=min(prompt, int(details.get("cached_tokens") or 0)),
        output_tokens=max(0, completion - audio_out),
        audio_output_tokens=audio_out,
    )


class OpenAICompatible(Provider):
    api = "openai"

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 200,
    ) -> None:
        super().__init__(name)
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = UpstreamClient(
            base_url,
            {"content-type": "application/json", **auth, **(headers or {})},
            max_connections=max_connections,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def complete(self, call: ProviderCall) -> Completion:
        body = call.request.upstream_body(call.model)
        body.pop("stream", None)
        body.pop("stream_options", None)
        with transport_errors(self.name):
            response = await self._client.post(
                "/chat/completions", orjson.dumps(body), call.timeout
            )
        if response.status >= 400:
            raise error_from_response(self.name, response, _error_type, _BY_TYPE)
        data = load_json(self.name, response.content)
        try:
            choice = data["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError):
            raise malformed(self.name, "no choices[0].message") from None
        if not isinstance(message, dict):
            raise malformed(self.name, "choices[0].message is not an object")
        content = message.get("content")
        return Completion(
            body=data,
            usage=usage_from_openai(data.get("usage")),
            content=content if isinstance(content, str) else None,
            finish_reason=choice.get("finish_reason"),
            tool_calls=message.get("tool_calls"),
            refusal=message.get("refusal"),
        )

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamEvent]:
        body = call.request.upstream_body(call.model)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}  # turnout settles every stream's cost
        usage, finish, done = Usage(), None, False
        with transport_errors(self.name):
            async with self._client.stream(
                "POST", "/chat/completions", call.timeout, body=orjson.dumps(body)
            ) as response:
                if response.status >= 400:
                    reply = await read_reply(response)
                    raise error_from_response(self.name, reply, _error_type, _BY_TYPE)
                async for line in iter_lines(response):
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        done = True
                        break
                    chunk = load_json(self.name, payload.encode())
                    if not isinstance(chunk, dict):
                        raise malformed(self.name, "stream chunk is not an object")
                    if chunk.get("usage"):
                        usage = usage_from_openai(chunk.pop("usage"))
                    choices = chunk.get("choices") or []
                    for choice in choices:
                        finish = choice.get("finish_reason") or finish
                    if choices:
                        yield Delta(chunk)
        if not done:
            raise UpstreamUnavailable(
                f"{self.name}: stream ended before [DONE]", provider=self.name
            )
        yield StreamEnd(usage=usage, finish_reason=finish)
