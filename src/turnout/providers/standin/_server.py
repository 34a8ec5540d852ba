"""Run the stand-in on a loopback port in a background thread (tests, demo, benchmarks)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

from ._app import StandInApp
from ._script import Script


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StandInServer:
    """`with StandInServer() as upstream: upstream.url, upstream.script.push(...)`."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        import uvicorn

        self.host, self.port = host, port or free_port()
        self.script = Script()
        self.app = StandInApp(self.script)
        config = uvicorn.Config(
            self.app,
            host=host,
            port=self.port,
            log_level="critical",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="turnout-standin", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> StandInServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"stand-in upstream did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> StandInServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
