"""A stand-in model provider that speaks the real wire formats, for tests, demo and benches."""

from ._app import StandInApp
from ._script import Received, Reply, Script, Served
from ._server import StandInServer, free_port

__all__ = ["Received", "Reply", "Script", "Served", "StandInApp", "StandInServer", "free_port"]
