"""The ledger's database: an engine for SQLite (default) or PostgreSQL, migrated at open.

SQLite runs in WAL mode with `BEGIN IMMEDIATE` transactions: readers never wait, and
writers from several processes queue on the file lock instead of failing mid-transaction.
Blocking calls run on a small thread pool so the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from turnout.core import ConfigError, Settings, TurnoutError

_T = TypeVar("_T")
MIGRATIONS = Path(__file__).parent / "migrations"


class LedgerUnavailableError(TurnoutError):
    """The ledger's database cannot be reached or written."""


def ledger_url(settings: Settings) -> str:
    if settings.governance.database_url:
        return settings.governance.database_url
    return f"sqlite:///{settings.home_dir / 'ledger.db'}"


def _where(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable url>"


class Database:
    def __init__(self, engine: Engine, workers: int) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="turnout-ledger")

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Database:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigError(
                f"governance.database_url: {url!r} is not a database URL "
                "(try sqlite:///path/ledger.db or postgresql+psycopg://user@host/db)"
            ) from exc
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 30})
            _sqlite_pragmas(engine)
            workers = 1  # one writer at a time anyway; a single thread keeps order cheap
        elif parsed.get_backend_name() == "postgresql":
            engine = create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
            workers = 10
        else:
            raise ConfigError(
                f"governance.database_url: {parsed.get_backend_name()!r} is not supported; "
                "use sqlite:/// or postgresql+psycopg://"
            )
        db = cls(engine, workers)
        if migrate:
            db.migrate()
        return db

    def nonblocking_engine(self) -> Engine:
        """SQLite: a second engine on the same file whose writes never wait for the lock
        (they fail at once with 'database is locked'), for writes on the event loop."""
        engine = create_engine(self.engine.url, connect_args={"timeout": 0})
        _sqlite_pragmas(engine, busy_timeout_ms=0)
        return engine

    def migrate(self) -> None:
        """Bring the schema to the newest migration; safe when replicas start together."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                if self.engine.dialect.name == "postgresql":
                    # One replica migrates; the others wait here, then find nothing to do.
                    conn.execute(text("SELECT pg_advisory_xact_lock(7151911)"))
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except OperationalError as exc:
            raise LedgerUnavailableError(
                f"ledger database {_where(str(self.engine.url))} cannot be opened: "
                f"{exc.orig}; check governance.database_url and that the server is running"
            ) from exc

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, functools.partial(fn, *args))
        except SQLAlchemyError as exc:
            raise LedgerUnavailableError(
                f"ledger database {_where(str(self.engine.url))} failed: {exc}"
            ) from exc

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.engine.dispose()


def _sqlite_pragmas(engine: Engine, busy_timeout_ms: int = 30000) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below be the only one
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
