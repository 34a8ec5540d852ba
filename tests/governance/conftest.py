from __future__ import annotations

from tests.gateway.conftest import standin, upstream
from tests.services import postgres_url, redis_url

__all__ = ["postgres_url", "redis_url", "standin", "upstream"]
