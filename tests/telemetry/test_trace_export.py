"""Traces as they leave a real gateway: over OTLP/HTTP, from the trace exporter process the
gateway feeds, to a stand-in collector on loopback that decodes the protobuf it receives."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.gateway.harness import png_data_uri
from tests.governance.test_gateway_governance import Admin, client, governed
from turnout.core import Settings
from turnout.gateway import BackgroundGateway
from turnout.providers.standin import StandInServer


class Collector:
    """An OTLP/HTTP traces endpoint that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Any] = []  # (resource attributes, span) pairs
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with collector.lock:
                    for resource_spans in request.resource_spans:
                        resource = _attributes(resource_spans.resource.attributes)
                        for scope in resource_spans.scope_spans:
                            collector.spans.extend((resource, s) for s in scope.spans)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Collector:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def named(self, name: str) -> list[Any]:
        with self.lock:
            return [s for _, s in self.spans if s.name == name]

    def wait_for(self, name: str, count: int, timeout: float = 20.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.named(name)) < count:
            assert time.monotonic() < deadline, f"{len(self.named(name))} {name!r} spans"
            time.sleep(0.05)
        return self.named(name)


def _attributes(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


@pytest.fixture(scope="module")
def upstream() -> Iterator[StandInServer]:
    with StandInServer() as server:
        yield server


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector() as c:
        yield c


def _settings(upstream: StandInServer, home: Path, collector: Collector) -> Settings:
    settings = governed(upstream, home)
    settings["telemetry"] = {"otlp_endpoint": collector.url, "service_name": "gw-test"}
    return Settings.model_validate(settings)


def test_spans_reach_an_otlp_collector_from_the_exporter_process(
    upstream: StandInServer, tmp_path: Path, collector: Collector
) -> None:
    upstream.script.reset()
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    image = {"type": "image_url", "image_url": {"url": png_data_uri((512, 512))}}
    messages: Any = [{"role": "user", "content": [{"type": "text", "text": "what?"}, image]}]
    background = BackgroundGateway(_settings(upstream, tmp_path, collector))
    with background as url:
        pipe = background.app.state.telemetry.tracing.pipe
        assert pipe is not None and pipe.proc is not None  # started with the gateway
        exporter_pid = pipe.proc.pid
        key = Admin(url).tenant("acme")
        raw = client(url, key).chat.completions.with_raw_response.create(
            model="auto",
            messages=messages,
            extra_headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
        )
        request_id = raw.headers["x-request-id"]
        client(url, key).chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}]
        )
    # Stopping the gateway ended the exporter's input: it exported everything, then exited.
    assert pipe.proc is None and pipe.dropped == 0
    with pytest.raises(ProcessLookupError):
        os.kill(exporter_pid, 0)
    roots = collector.wait_for("chat.completions", 2, timeout=2)
    (root,) = [s for s in roots if _attributes(s.attributes)["turnout.request_id"] == request_id]
    assert root.trace_id.hex() == trace_id
    assert root.parent_span_id.hex() == "00f067aa0ba902b7"  # the caller's span
    attrs = _attributes(root.attributes)
    assert attrs["turnout.tenant"] == "acme" and attrs["turnout.images"] == 1
    assert attrs["gen_ai.usage.image.input_tokens"] > 0
    assert attrs["http.response.status_code"] == 200
    assert root.end_time_unix_nano > root.start_time_unix_nano
    resources = {r["service.name"] for r, _ in collector.spans}
    assert resources == {"gw-test"}
    with collector.lock:
        children = [s for _, s in collector.spans if s.parent_span_id == root.span_id]
    names = {s.name for s in children}
    assert {"auth", "parse", "image_count", "route", "reserve", "provider", "settle"} <= names
    assert {"response", "chat gpt-4.1-mini"} <= names
    for span in children:  # within the request, with their real times
        assert span.trace_id == root.trace_id
        assert root.start_time_unix_nano <= span.start_time_unix_nano
        assert span.start_time_unix_nano <= span.end_time_unix_nano <= root.end_time_unix_nano
    (chat,) = [s for s in children if s.name == "chat gpt-4.1-mini"]
    usage = _attributes(chat.attributes)
    assert usage["gen_ai.operation.name"] == "chat"
    assert usage["gen_ai.provider.name"] == "primary"
    assert usage["gen_ai.usage.image.input_tokens"] > 0
    assert usage["gen_ai.usage.input_tokens"] == (
        usage["gen_ai.usage.text.input_tokens"] + usage["gen_ai.usage.image.input_tokens"]
    )
    assert usage["turnout.outcome"] == "ok"


def test_a_dead_exporter_process_is_started_again_and_requests_never_notice(
    upstream: StandInServer, tmp_path: Path, collector: Collector
) -> None:
    upstream.script.reset()
    background = BackgroundGateway(_settings(upstream, tmp_path, collector))
    with background as url:
        pipe = background.app.state.telemetry.tracing.pipe
        pipe.restart_s = 0.0
        key = Admin(url).tenant("acme")
        sdk = client(url, key)
        first = pipe.proc
        first.kill()
        first.wait()
        for _ in range(5):  # while it is dead and being replaced: answers as usual
            assert (
                sdk.chat.completions.create(
                    model="auto", messages=[{"role": "user", "content": "hi"}]
                )
                .choices[0]
                .message.content
            )
        deadline = time.monotonic() + 5
        while pipe.proc is None or pipe.proc is first:
            assert time.monotonic() < deadline, "the exporter was not started again"
            time.sleep(0.05)
        raw = sdk.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "again"}]
        )
    after = raw.headers["x-request-id"]
    roots = collector.wait_for("chat.completions", 1, timeout=2)
    assert after in {_attributes(s.attributes)["turnout.request_id"] for s in roots}
