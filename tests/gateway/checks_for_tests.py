"""A caller-supplied check, loaded by 'module:function' from a route's config."""

from __future__ import annotations

from typing import Any


def mentions_oslo(answer: str, request: dict[str, Any]) -> bool | str:
    return True if "Oslo" in answer else "no Oslo"
