"""A stand-in model provider on loopback, with scripted answers, latency, errors and usage,
in OpenAI's, Gemini's and Anthropic's wire formats (one format module each).

A bare ASGI app, so the stand-in is never the bottleneck in a benchmark.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from typing import Any

import orjson

from . import _anthropic_format as anthropic_format
from . import _gemini_format as gemini_format
from . import _openai_format as openai_format
from ._script import Received, Reply, Script, Served

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class StreamCut(Exception):
    """Raised inside the app to drop a streaming connection mid-answer."""


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send_json(
    send: Send, status: int, payload: Any, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = orjson.dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_raw(
    send: Send, status: int, body: bytes, content_type: bytes = b"text/plain"
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type)],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _gemini_route(path: str) -> tuple[str, str] | None:
    """(model, method) of `/v1beta/models/{model}:{method}`; None for other paths."""
    for prefix in ("/v1beta/models/", "/v1/models/"):
        if path.startswith(prefix):
            model, colon, method = path[len(prefix) :].rpartition(":")
            if colon and model and method in ("generateContent", "streamGenerateContent"):
                return model, method
    return None


def _error_headers(reply: Reply) -> list[tuple[bytes, bytes]]:
    if reply.retry_after is None:
        return []
    return [(b"retry-after", f"{reply.retry_after:g}".encode())]


class StandInApp:
    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path, method = scope["path"], scope["method"]
        raw = await _read_body(receive)
        if path.startswith("/_standin/"):
            await self._control(path, method, raw, send)
            return
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            await _send_json(
                send,
                400,
                {"error": {"message": "body is not JSON", "type": "invalid_request_error"}},
            )
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if path.endswith("/chat/completions") and method == "POST":
            await self._openai(path, headers, body, send)
        elif (route := _gemini_route(path)) is not None and method == "POST":
            query = scope.get("query_string", b"").decode()
            await self._gemini(path, route, "alt=sse" in query, headers, body, send)
        elif path == "/v1/messages" and method == "POST":
            await self._anthropic(path, headers, body, send)
        else:
            await _send_json(
                send, 404, {"error": {"message": f"no route {method} {path}", "type": "not_found"}}
            )

    async def _control(self, path: str, method: str, raw: bytes, send: Send) -> None:
        if path == "/_standin/script" and method == "POST":
            data = orjson.loads(raw)
            self.script.push(data["model"], *(Reply.from_dict(r) for r in data["replies"]))
            await _send_json(send, 200, {"ok": True})
        elif path == "/_standin/reset" and method == "POST":
            self.script.reset()
            await _send_json(send, 200, {"ok": True})
        elif path == "/_standin/requests":
            await _send_json(send, 200, [r.__dict__ for r in self.script.received])
        elif path == "/_standin/served":
            await _send_json(send, 200, [s.__dict__ for s in self.script.served_list()])
        else:
            await _send_json(send, 404, {"error": {"message": f"no control {path}"}})

    async def _openai(
        self, path: str, headers: dict[str, str], body: dict[str, Any], send: Send
    ) -> None:
        model = str(body.get("model", ""))
        started = time.monotonic()
        self.script.record(Received(path, model, headers, body))
        reply = self.script.next_reply(model)
        if self.script.bill is not None and reply.prompt_tokens is None and reply.status == 200:
            reply = dataclasses.replace(reply, prompt_tokens=self.script.bill(body))
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200:
            await _send_json(
                send, reply.status, openai_format.error_body(reply), _error_headers(reply)
            )
            return
        if reply.malformed:
            await _send_raw(send, 200, b'{"choices": [ this is not json', b"application/json")
            return
        if body.get("stream"):
            await self._sse(
                send,
                reply,
                (orjson.dumps(c) for c in openai_format.stream_chunks(reply, body)),
                done=b"data: [DONE]\n\n",
            )
        else:
            await _send_json(send, 200, openai_format.completion(reply, body))
        # What a provider bills: the whole answer was sent (a cut stream raised above).
        served = Served(
            path, model, body, openai_format.usage(reply, body), started, time.monotonic()
        )
        self.script.record_served(served)

    async def _gemini(
        self,
        path: str,
        route: tuple[str, str],
        sse: bool,
        headers: dict[str, str],
        body: dict[str, Any],
        send: Send,
    ) -> None:
        model, method = route
        self.script.record(Received(path, model, headers, body))
        reply = self.script.next_reply(model)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        streaming = method == "streamGenerateContent"
        error = gemini_format.error_body(reply)
        if reply.status != 200 and not (streaming and reply.drop_after is not None):
            await _send_json(send, reply.status, error, _error_headers(reply))
        elif reply.malformed and not (streaming and sse):
            await _send_raw(send, 200, b'{"candidates": [ this is not json', b"application/json")
        elif not streaming:
            await _send_json(send, 200, gemini_format.completion(reply, model, body))
        elif not sse:
            # Without alt=sse, Gemini streams one JSON array of the same responses.
            await _send_json(send, 200, list(gemini_format.stream_chunks(reply, model, body)))
        else:
            chunks: Iterator[bytes] = (
                orjson.dumps(c) for c in gemini_format.stream_chunks(reply, model, body)
            )
            if reply.malformed:
                chunks = iter([b"{not json"])
            await self._sse(
                send,
                reply,
                (b"data: " + c + b"\r\n\r\n" for c in chunks),
                framed=True,
                # An error status with drop_after: Google's error object replaces a chunk.
                cut_with=b"data: " + orjson.dumps(error) + b"\r\n\r\n"
                if reply.status != 200
                else None,
            )

    async def _anthropic(
        self, path: str, headers: dict[str, str], body: dict[str, Any], send: Send
    ) -> None:
        model = str(body.get("model", ""))
        self.script.record(Received(path, model, headers, body))
        reply = self.script.next_reply(model)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        streaming = bool(body.get("stream"))
        error = anthropic_format.error_body(reply)
        if reply.status != 200 and not (streaming and reply.drop_after is not None):
            await _send_json(send, reply.status, error, _error_headers(reply))
        elif reply.malformed and not streaming:
            await _send_raw(send, 200, b'{"content": [ this is not json', b"application/json")
        elif not streaming:
            await _send_json(send, 200, anthropic_format.message(reply, body))
        else:
            events: Iterator[bytes] = (
                b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
                for name, data in anthropic_format.stream_events(reply, body)
            )
            if reply.malformed:
                events = iter([b"event: message_start\ndata: {not json\n\n"])
            await self._sse(
                send,
                reply,
                events,
                framed=True,
                # An error status with drop_after: `event: error` arrives mid-stream.
                cut_with=b"event: error\ndata: " + orjson.dumps(error) + b"\n\n"
                if reply.status != 200
                else None,
            )

    @staticmethod
    async def _sse(
        send: Send,
        reply: Reply,
        payloads: Any,
        done: bytes = b"",
        *,
        framed: bool = False,
        cut_with: bytes | None = None,
    ) -> None:
        """Payloads as SSE `data:` lines (or, `framed`, as whole events already);
        at `drop_after`, the connection is cut, or `cut_with` is sent and the stream ends."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        for i, payload in enumerate(payloads):
            if reply.drop_after is not None and i >= reply.drop_after:
                if cut_with is not None:
                    await send({"type": "http.response.body", "body": cut_with})
                    return
                raise StreamCut(f"scripted drop after {i} chunks")
            frame = payload if framed else b"data: " + payload + b"\n\n"
            await send({"type": "http.response.body", "body": frame, "more_body": True})
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
        await send({"type": "http.response.body", "body": done})
