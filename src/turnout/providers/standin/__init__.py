"""A stand-in model provider that speaks the real wire formats, for tests, demo and benches."""

from ._app import StandInApp
from ._billing import catalog_billing
from ._script import Received, Reply, Script, Served
from ._server import StandInServer, free_port

__all__ = [
    "Received",
    "Reply",
    "Script",
    "Served",
    "StandInApp",
    "StandInServer",
    "catalog_billing",
    "free_port",
]
