"""Words with boxes: what a page's text layer or OCR gives, and what passages are cut from.

A box is (left, top, right, bottom) as fractions of the upright page, origin top left, so
a citation can point at a region whatever the resolution it is drawn at.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    right: float
    bottom: float

    def unrotate(self, rotation: int) -> Box:
        """This box, measured on an image turned `rotation` degrees clockwise to be upright,
        on the image as it was before the turn."""
        turn = rotation % 360
        if turn not in (0, 90, 180, 270):
            raise ValueError(f"rotation {rotation}: expected 0, 90, 180 or 270")

        def back(x: float, y: float) -> tuple[float, float]:
            if turn == 90:
                return y, 1 - x
            if turn == 180:
                return 1 - x, 1 - y
            if turn == 270:
                return 1 - y, x
            return x, y

        (x0, y0), (x1, y1) = back(self.left, self.top), back(self.right, self.bottom)
        return Box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (
            round(self.left, 4),
            round(self.top, 4),
            round(self.right, 4),
            round(self.bottom, 4),
        )


@dataclass(frozen=True)
class Word:
    """One word, its box on the page (None where unknown) and OCR's confidence (0 to 100)."""

    text: str
    box: Box | None = None
    confidence: float | None = None


def union(boxes: Iterable[Box | None]) -> Box | None:
    """The smallest box holding every known box; None when none is known."""
    known = [b for b in boxes if b is not None]
    if not known:
        return None
    return Box(
        min(b.left for b in known),
        min(b.top for b in known),
        max(b.right for b in known),
        max(b.bottom for b in known),
    )
