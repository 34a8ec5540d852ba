from __future__ import annotations

from collections.abc import Iterator

import pytest

from turnout.providers.standin import StandInServer

from .harness import route_settings, running_gateway


@pytest.fixture(scope="module")
def upstream() -> Iterator[StandInServer]:
    with StandInServer() as server:
        yield server


@pytest.fixture
def standin(upstream: StandInServer) -> StandInServer:
    upstream.script.reset()
    return upstream


@pytest.fixture(scope="module")
def gateway(upstream: StandInServer) -> Iterator[str]:
    """The default gateway: route `auto` (cheap with a fallback, then strong)."""
    with running_gateway(route_settings(upstream.url)) as url:
        yield url
