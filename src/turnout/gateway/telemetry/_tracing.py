"""OpenTelemetry traces: a span per request (continuing the client's `traceparent`), a
span per stage, and a `chat` span per provider attempt with the GenAI semantic
conventions, per-modality usage included. Off unless `telemetry.otlp_endpoint` is set;
an endpoint that does not answer costs a logged export error, never a request.

The gateway itself makes no spans: after the response it hands each request's *trace
record* (plain data, see `_span_process`) to `Tracing.export`. With an OTLP endpoint the
records go, batched, down a pipe to a trace exporter process that makes the spans with
the OpenTelemetry SDK and exports them, so that work (about a millisecond of Python per
request, most of what tracing cost the gateway) runs beside the gateway, not under its
GIL. Given an exporter object instead (tests pass an in-memory one), the same spans are
made in-process, at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson

from turnout.core import ConfigError, TelemetrySettings

from ._span_process import build_spans

log = logging.getLogger("turnout.gateway.telemetry")

_SCRIPT = str(Path(__file__).with_name("_span_process.py"))


class Tracing:
    def __init__(self, settings: TelemetrySettings, exporter: Any = None) -> None:
        """`exporter`: an OpenTelemetry SpanExporter; spans are then made in-process and
        handed to it at once (tests pass an in-memory one)."""
        self.tracer: Any = None  # in-process only
        self._provider: Any = None
        self.pipe: SpanPipe | None = None
        if exporter is None and settings.otlp_endpoint is None:
            return
        if exporter is not None:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor

            resource = Resource.create({"service.name": settings.service_name})
            provider = TracerProvider(resource=resource)
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            self._provider = provider
            self.tracer = provider.get_tracer("turnout.gateway")
            return
        endpoint = settings.otlp_endpoint or ""
        if urlparse(endpoint).scheme not in ("http", "https"):
            raise ConfigError(
                f"telemetry.otlp_endpoint: {endpoint!r} is not an http(s) URL "
                "(e.g. http://collector:4318/v1/traces)"
            )
        self.pipe = SpanPipe(
            {
                "endpoint": endpoint,
                "headers": dict(settings.otlp_headers),
                "service_name": settings.service_name,
                "timeout": 5,
            }
        )

    @property
    def enabled(self) -> bool:
        return self.tracer is not None or self.pipe is not None

    def start(self) -> None:
        """Start the exporter process now rather than at the first request."""
        if self.pipe is not None:
            self.pipe.start()

    def export(self, record: dict[str, Any]) -> None:
        """One request's spans, from its trace record (see `_span_process`)."""
        if self.pipe is not None:
            self.pipe.send(record)
        elif self.tracer is not None:
            build_spans(self.tracer, record)

    def shutdown(self) -> None:
        if self.pipe is not None:
            self.pipe.close()
        if self._provider is not None:
            self._provider.shutdown()


class SpanPipe:
    """Trace records to the exporter process: gathered for `interval_s`, then written as
    one JSON line without ever blocking the event loop (what the pipe does not take now
    is written when it drains). If the process falls so far behind that `limit_bytes` are
    waiting, further records are dropped, counted and logged rather than slowing
    requests; if it dies, it is started again (at most every `restart_s`)."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        interval_s: float = 0.2,
        limit_bytes: int = 64 * 1024 * 1024,
        restart_s: float = 10.0,
    ) -> None:
        self._config = orjson.dumps(config) + b"\n"
        self.interval_s = interval_s
        self.limit_bytes = limit_bytes
        self.restart_s = restart_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._records: list[dict[str, Any]] = []
        self._out = bytearray()
        self._scheduled = False
        self._watching: asyncio.AbstractEventLoop | None = None  # loop with our writer
        self._started_at = -restart_s
        self.dropped = 0
        self._reported = float("-inf")
        self._closed = False

    # -------------------------------------------------------------- the process

    def start(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self._spawn()

    def _spawn(self) -> None:
        self._started_at = time.monotonic()
        # -P: the script's folder is not put on sys.path; it imports no turnout module.
        self.proc = subprocess.Popen(
            [sys.executable, "-P", _SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
        )
        assert self.proc.stdin is not None
        os.set_blocking(self.proc.stdin.fileno(), False)
        self._out = bytearray(self._config)  # what a dead process had not read is lost

    def _alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is None:
            return True
        if self.proc is not None:
            self._lose(len(self._records), f"trace exporter exited ({self.proc.returncode})")
            self._records.clear()
            self._unwatch()
            self.proc = None
        if time.monotonic() - self._started_at < self.restart_s:
            return False
        self._spawn()
        return True

    # -------------------------------------------------------------- sending

    def send(self, record: dict[str, Any]) -> None:
        if self._closed:
            return
        self._records.append(record)
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a library caller): write now
            self.flush(block=True)
            return
        self._scheduled = True
        loop.call_later(self.interval_s, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        self.flush(loop=loop)

    def flush(self, *, loop: asyncio.AbstractEventLoop | None = None, block: bool = False) -> None:
        """Write what has gathered: as much as the pipe takes now (then the rest when it
        drains, on `loop`), or all of it (`block`)."""
        if self._closed:
            return
        if not self._alive():
            self._lose(len(self._records), "trace exporter not running")
            self._records.clear()
            return
        if self._records:
            if len(self._out) > self.limit_bytes:
                self._lose(len(self._records), "trace exporter is behind")
            else:
                self._out += orjson.dumps(self._records)
                self._out += b"\n"
            self._records.clear()
        self._write(loop, block)

    def _write(self, loop: asyncio.AbstractEventLoop | None, block: bool) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        fd = self.proc.stdin.fileno()
        try:
            if block:
                os.set_blocking(fd, True)
                try:
                    while self._out:
                        del self._out[: os.write(fd, self._out)]
                finally:
                    os.set_blocking(fd, False)
            elif self._out:
                with contextlib.suppress(BlockingIOError):
                    del self._out[: os.write(fd, self._out)]
        except OSError as exc:  # the process died: _alive() restarts it next time
            log.warning("trace exporter: could not write to it (%s)", exc)
            self._out.clear()
            self._unwatch()
            return
        if self._out and loop is not None and self._watching is None:
            loop.add_writer(fd, self._write, loop, False)
            self._watching = loop
        elif not self._out:
            self._unwatch()

    def _unwatch(self) -> None:
        if self._watching is not None and self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(Exception):
                self._watching.remove_writer(self.proc.stdin.fileno())
        self._watching = None

    def _lose(self, count: int, why: str) -> None:
        if not count:
            return
        self.dropped += count
        now = time.monotonic()
        if now - self._reported >= 10:
            self._reported = now
            log.warning("%s: %d requests' spans dropped so far", why, self.dropped)

    def close(self, timeout: float = 15.0) -> None:
        """Send what is left, end the input and wait for the process to export it."""
        if self._closed:
            return
        if self._records or (self.proc is not None and self.proc.poll() is None):
            self._unwatch()
            self.flush(block=True)
        self._closed = True
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("trace exporter did not finish in %.0f s; stopped", timeout)
            proc.kill()
            proc.wait()


def usage_attributes(usage: Any) -> dict[str, int]:
    """GenAI usage attributes, per modality, from a turnout Usage."""
    return {
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens + usage.audio_output_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.cached_input_tokens,
        "gen_ai.usage.text.input_tokens": usage.text_input_tokens,
        "gen_ai.usage.image.input_tokens": usage.image_input_tokens,
        "gen_ai.usage.audio.input_tokens": usage.audio_input_tokens,
        "gen_ai.usage.text.output_tokens": usage.output_tokens,
        "gen_ai.usage.audio.output_tokens": usage.audio_output_tokens,
    }


def trace_headers(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The caller's `traceparent` and `tracestate` (parsed by the exporter, later)."""
    return headers.get("traceparent"), headers.get("tracestate")
