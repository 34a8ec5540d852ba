"""A real stand-in upstream and a side host, both on loopback, shared by a module's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from turnout.providers.standin import StandInServer

from .side_host import SideHost


@pytest.fixture(scope="module")
def upstream_server() -> Iterator[StandInServer]:
    with StandInServer() as server:
        yield server


@pytest.fixture
def upstream(upstream_server: StandInServer) -> StandInServer:
    """The module's stand-in with an empty script and no recorded requests."""
    upstream_server.script.reset()
    return upstream_server


@pytest.fixture(scope="module")
def side_host() -> Iterator[SideHost]:
    with SideHost() as host:
        yield host
