"""Real PostgreSQL and Redis for the tests that need them.

Their URLs come from the environment (`TEST_POSTGRES_URL`, `TEST_REDIS_URL`); `.ci/run`
sets both. Without them such a test is skipped, except where `TEST_REQUIRE_SERVICES=1`
(CI) makes a missing service a failure, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from turnout.gateway.governance import Database


def service_url(name: str) -> str:
    url = os.environ.get(f"TEST_{name.upper()}_URL", "")
    if url:
        return url
    message = f"TEST_{name.upper()}_URL is not set; this test needs a real {name}"
    if os.environ.get("TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> str:
    return service_url("postgres")


@pytest.fixture
def redis_url() -> str:
    return service_url("redis")


@contextmanager
def own_schema(server_url: str) -> Iterator[str]:
    """The URL of a throwaway PostgreSQL schema: the database is shared with other tests
    (and their gateways' reconcilers), and a test must see only its own ledger."""
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        sep = "&" if "?" in server_url else "?"
        yield f"{server_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated ledger database: a SQLite file, then a throwaway PostgreSQL schema."""
    from turnout.gateway.governance import Database

    if request.param == "sqlite":
        database = Database.open(f"sqlite:///{tmp_path / 'ledger.db'}")
        yield database
        database.close()
        return
    with own_schema(service_url("postgres")) as url:
        database = Database.open(url)
        yield database
        database.close()
