from __future__ import annotations

from tests.services import ledger_db, postgres_url

__all__ = ["ledger_db", "postgres_url"]
