"""A loopback HTTP server for what the stand-in does not serve: images for the Gemini
adapter to fetch, and streams that end cleanly but before the provider's last event."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from .calls import GIF, PNG

ROUTES = {  # path -> (status, content type, body)
    "/cat.png": (200, "image/png", PNG),
    "/cat.gif": (200, "image/gif", GIF),
    "/page.html": (200, "text/html", b"<html>not an image</html>"),
    "/big.png": (200, "image/png", PNG + b"\0" * 300_000),
}
UNFINISHED = {  # a POST path fragment -> an SSE body that stops early
    "streamGenerateContent": b'data: {"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]}'
    b"\r\n\r\n",
    "/v1/messages": b'event: message_start\ndata: {"type": "message_start", "message": '
    b'{"usage": {"input_tokens": 3}}}\n\n',
}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.seen_headers.append({k.lower(): v for k, v in self.headers.items()})
        if self.path == "/moved.png":
            self._answer(302, "text/plain", b"", location="/cat.png")
            return
        self._answer(*ROUTES.get(self.path, (404, "text/plain", b"no such image")))

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = next((v for k, v in UNFINISHED.items() if k in self.path), None)
        if body is None:
            self._answer(404, "text/plain", b"")
        else:
            self._answer(200, "text/event-stream", body)

    def _answer(self, status: int, kind: str, body: bytes, location: str | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        if location:
            self.send_header("location", location)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    seen_headers: list[dict[str, str]]


class SideHost:
    """`with SideHost() as host: host.url + "/cat.png"`; `host.seen_headers` per GET."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.seen_headers = []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def seen_headers(self) -> list[dict[str, str]]:
        return self._server.seen_headers

    def __enter__(self) -> SideHost:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
