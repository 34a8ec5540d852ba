"""Sampled judging, off the request path (being built; see Judging)."""

from __future__ import annotations

from typing import Any

from turnout.core import ChatRequest

from ._observation import Observation


class Judging:
    """Judges one request in `judge.every` per route (routes without `judge` are never
    judged). `consider` is called after each non-streamed answer has been sent."""

    def consider(self, obs: Observation, request: ChatRequest, answer: str, caller: Any) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError
