"""Run the gateway under uvicorn; SIGTERM or Ctrl-C finishes requests in flight first."""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys
import threading
import time
from typing import Any

from turnout.core import Settings

from ._app import build_app


def configure_logging(settings: Settings) -> logging.handlers.QueueListener:
    """turnout's own log lines to stderr: the per-request JSON line as it is (one JSON
    object per line, for log shippers), everything else with time, level and logger.
    Records go through a queue to a writer thread, so the event loop never waits on the
    write. Stop the returned listener to flush."""
    level = settings.log_level.upper()
    plain = logging.StreamHandler(sys.stderr)
    plain.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    lines = logging.StreamHandler(sys.stderr)
    lines.setFormatter(logging.Formatter("%(message)s"))
    lines.addFilter(lambda record: record.name == "turnout.gateway.requests")
    plain.addFilter(lambda record: record.name != "turnout.gateway.requests")
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, plain, lines, respect_handler_level=False)
    root = logging.getLogger("turnout")
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    root.setLevel(level)
    root.propagate = False
    listener.start()
    return listener


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    listener = configure_logging(settings)
    app = build_app(settings)
    config = uvicorn.Config(
        app,
        host=host or settings.gateway.host,
        port=settings.gateway.port if port is None else port,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=int(settings.gateway.shutdown_grace_s),
        lifespan="on",
    )
    try:
        uvicorn.Server(config).run()
    finally:
        listener.stop()


class BackgroundGateway:
    """A gateway on a loopback port in a background thread, for the demo, tests and
    benchmarks: `with BackgroundGateway(settings) as url: ...`."""

    def __init__(
        self,
        settings: Settings,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        span_exporter: Any = None,
        simulated: bool = False,
    ) -> None:
        import uvicorn

        from turnout.providers.standin import free_port

        self.host, self.port = host, port or free_port()
        self.app = build_app(settings, span_exporter=span_exporter, simulated=simulated)
        app = self.app
        config = uvicorn.Config(app, host=host, port=self.port, log_level="critical", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="turnout-gateway", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the gateway did not start on {self.url}")
            time.sleep(0.01)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
