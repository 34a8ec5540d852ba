from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services import postgres_url, redis_url
from turnout.providers.standin import StandInServer

__all__ = ["postgres_url", "redis_url"]


@pytest.fixture(scope="module")
def upstream() -> Iterator[StandInServer]:
    with StandInServer() as server:
        yield server


@pytest.fixture
def standin(upstream: StandInServer) -> StandInServer:
    upstream.script.reset()
    return upstream
