"""Run the gateway under uvicorn; SIGTERM or Ctrl-C finishes requests in flight first."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

from turnout.core import Settings

from ._app import build_app


def configure_logging(settings: Settings) -> None:
    """turnout's own log lines to stderr: the per-request JSON line as it is (one JSON
    object per line, for log shippers), everything else with time, level and logger."""
    level = settings.log_level.upper()
    plain = logging.StreamHandler(sys.stderr)
    plain.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("turnout")
    root.handlers[:] = [plain]
    root.setLevel(level)
    root.propagate = False
    lines = logging.StreamHandler(sys.stderr)
    lines.setFormatter(logging.Formatter("%(message)s"))
    requests = logging.getLogger("turnout.gateway.requests")
    requests.handlers[:] = [lines]
    requests.setLevel(level)
    requests.propagate = False


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    configure_logging(settings)
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
    uvicorn.Server(config).run()


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
    ) -> None:
        import uvicorn

        from turnout.providers.standin import free_port

        self.host, self.port = host, port or free_port()
        self.app = build_app(settings, span_exporter=span_exporter)
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
