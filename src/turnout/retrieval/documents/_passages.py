"""Passages: a page's words cut into overlapping windows, each with its page and box.

By length with overlap, in reading order: a window of `words` words, the next starting
`words - overlap` later, so a sentence cut at one edge is whole in the neighbour. Each
passage keeps the union of its words' boxes, so a citation can point at the region.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from turnout.core import InvalidInputError

from ._words import Box, Word, union


@dataclass(frozen=True)
class Passage:
    """Passage `index` (from 0) of page `page` (from 1): its text and its box on the page."""

    page: int | None
    index: int
    text: str
    box: Box | None


def split_passages(
    words: Sequence[Word], page: int | None, *, size: int = 80, overlap: int = 20
) -> list[Passage]:
    """Windows of `size` words overlapping by `overlap`; a short page is one passage."""
    if size < 1 or not 0 <= overlap < size:
        raise InvalidInputError(
            f"passage size {size} and overlap {overlap}: need size >= 1 and 0 <= overlap < size"
        )
    if not words:
        return []
    step = size - overlap
    out: list[Passage] = []
    start = 0
    while True:
        window = words[start : start + size]
        text = " ".join(w.text for w in window)
        out.append(Passage(page, len(out), text, union(w.box for w in window)))
        if start + size >= len(words):
            return out
        start += step
