"""A FastAPI app with only the dashboard's routes, the gateway's error handlers, and an
admin key: what the tests and `benches/dashboard.py` serve."""

from __future__ import annotations

import threading
import time
from types import TracebackType

from fastapi import FastAPI
from starlette.exceptions import HTTPException

from turnout.core import Settings
from turnout.gateway._errors import handle_any, handle_http
from turnout.gateway.governance import Database
from turnout.gateway.telemetry._dashboard import dashboard_routes
from turnout.gateway.telemetry._dashboard_data import Freshness

ADMIN = "dashboard-admin-key-for-tests"


def dashboard_app(
    db: Database, *, admin_key: str | None = ADMIN, freshness: Freshness | None = None,
    simulated: bool = False,
) -> FastAPI:  # fmt: skip
    settings = Settings(governance={"admin_key": admin_key})
    app = FastAPI()
    app.include_router(dashboard_routes(settings, db, freshness=freshness, simulated=simulated))
    app.add_exception_handler(HTTPException, handle_http)
    app.add_exception_handler(Exception, handle_any)
    return app


class Served:
    """`app` under uvicorn on a loopback port, in a thread: `with Served(app) as url:`."""

    def __init__(self, app: FastAPI) -> None:
        import uvicorn

        from turnout.providers.standin import free_port

        self.url = f"http://127.0.0.1:{free_port()}"
        port = int(self.url.rsplit(":", 1)[1])
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the dashboard app did not start on {self.url}")
            time.sleep(0.01)
        return self.url

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
