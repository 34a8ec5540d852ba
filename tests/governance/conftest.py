from __future__ import annotations

from tests.gateway.conftest import standin, upstream
from tests.services import ledger_db, postgres_url, redis_url

__all__ = ["ledger_db", "postgres_url", "redis_url", "standin", "upstream"]
