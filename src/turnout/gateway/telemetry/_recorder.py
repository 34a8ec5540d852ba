"""The per-request record, written to the ledger database in batches off the request path:
a queue the request appends to, and one task that writes what has gathered every
`interval_s` in one transaction. A full queue drops the oldest records, counted and
logged, rather than slowing requests; stop() writes what is left."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from sqlalchemy import insert

from ..governance import Database
from ..governance._schema import requests

log = logging.getLogger("turnout.gateway.telemetry")


class RequestRecorder:
    def __init__(self, db: Database, *, interval_s: float = 0.25, limit: int = 50_000) -> None:
        self.db = db
        self.interval_s = interval_s
        self._pending: deque[dict[str, Any]] = deque(maxlen=limit)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def add(self, row: dict[str, Any]) -> None:
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1
        self._pending.append(row)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch = list(self._pending)
        self._pending.clear()
        try:
            await self.db.run(self._write, batch)
        except Exception:  # the record is telemetry: never let it take the gateway down
            log.exception("could not write %d request records; they are lost", len(batch))
        if self.dropped:
            log.warning("request record queue was full: %d records dropped", self.dropped)
            self.dropped = 0

    def _write(self, batch: list[dict[str, Any]]) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(insert(requests), batch)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
