"""Run the gateway under uvicorn; SIGTERM or Ctrl-C finishes requests in flight first."""

from __future__ import annotations

from turnout.core import Settings

from ._app import build_app


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    import uvicorn

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
