"""A stand-in model provider on loopback: OpenAI's wire format (Gemini and Anthropic are
added by their own format modules), with scripted answers, latency, errors and usage.

A bare ASGI app, so the stand-in is never the bottleneck in a benchmark.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import orjson

from . import _openai_format as openai_format
from ._script import Received, Reply, Script

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
        else:
            await _send_json(send, 404, {"error": {"message": f"no control {path}"}})

    async def _openai(
        self, path: str, headers: dict[str, str], body: dict[str, Any], send: Send
    ) -> None:
        model = str(body.get("model", ""))
        self.script.record(Received(path, model, headers, body))
        reply = self.script.next_reply(model)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200:
            await _send_json(
                send, reply.status, openai_format.error_body(reply), _error_headers(reply)
            )
        elif reply.malformed:
            await _send_raw(send, 200, b'{"choices": [ this is not json', b"application/json")
        elif body.get("stream"):
            await self._sse(
                send,
                reply,
                (orjson.dumps(c) for c in openai_format.stream_chunks(reply, body)),
                done=b"data: [DONE]\n\n",
            )
        else:
            await _send_json(send, 200, openai_format.completion(reply, body))

    @staticmethod
    async def _sse(send: Send, reply: Reply, payloads: Any, done: bytes = b"") -> None:
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
                raise StreamCut(f"scripted drop after {i} chunks")
            await send(
                {
                    "type": "http.response.body",
                    "body": b"data: " + payload + b"\n\n",
                    "more_body": True,
                }
            )
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
        await send({"type": "http.response.body", "body": done})
