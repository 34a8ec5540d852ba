"""The gateway: an OpenAI-compatible HTTP front over routing, the cascade and providers."""

from ._app import build_app
from ._cascade import AllAttemptsFailedError, Answer, Attempt, Cascade
from ._router import Plan, RouteNotFoundError, Router
from ._serve import BackgroundGateway, serve

__all__ = [
    "AllAttemptsFailedError",
    "Answer",
    "Attempt",
    "BackgroundGateway",
    "Cascade",
    "Plan",
    "RouteNotFoundError",
    "Router",
    "build_app",
    "serve",
]
