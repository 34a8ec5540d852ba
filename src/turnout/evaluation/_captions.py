"""Caption types, for recall broken down by what a caption talks about.

Two axes, each by word lists (no parser, so the result is reproducible and explainable):
- spatial: the caption uses a spatial-relation word or phrase (left, right, above, below,
  behind, in front of, next to, on top of, ...);
- objects: how many things it names, from a lexicon of common object nouns (COCO's
  categories and Flickr30K's frequent nouns). A plural noun or a count word ("two",
  "group of") names several. Captions naming none of the lexicon's nouns form their own group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

SPATIAL_PHRASES: tuple[str, ...] = (
    "left",
    "right",
    "above",
    "below",
    "behind",
    "in front of",
    "next to",
    "on top of",
    "beside",
    "underneath",
    "under",
    "between",
)
_SPATIAL = re.compile(r"\b(" + "|".join(re.escape(p) for p in SPATIAL_PHRASES) + r")\b", re.I)

_SINGULAR = frozenset(
    re.findall(
        r"[a-z]+",
        """
man woman boy girl child kid baby person guy lady gentleman toddler teenager adult player
worker skier surfer rider biker cyclist skateboarder snowboarder dancer musician singer
crowd team family couple friend officer soldier cowboy chef doctor student athlete climber
dog cat horse bird cow sheep elephant bear zebra giraffe puppy duck goat pig chicken fish
animal camel monkey deer lion tiger
car bus truck train bicycle bike motorcycle boat airplane plane van taxi tractor cart
wagon scooter canoe kayak helicopter
ball frisbee kite skateboard surfboard snowboard ski bat racket glove umbrella bag backpack
handbag suitcase bottle cup glass bowl plate fork knife spoon pizza sandwich cake donut
banana apple orange carrot broccoli hotdog chair couch sofa bed table bench desk toilet sink
tv television laptop computer phone keyboard mouse book clock vase scissors teddy
hat helmet shirt jacket dress coat scarf sign flag fence wall door window tree flower rock
building house tent pole box guitar drum microphone camera wave fountain statue stroller
""",
    )
)
_IRREGULAR_PLURALS = {"men", "women", "children", "people", "geese", "mice", "teeth", "feet"}
_COUNT_WORDS = re.compile(
    r"\b(two|three|four|five|six|seven|eight|nine|ten|several|many|multiple|group of|"
    r"couple of|pair of|crowd of|team of|bunch of|lots of|both)\b",
    re.I,
)
_WORD = re.compile(r"[a-z]+")

ObjectCount = Literal["no known object", "one object", "several objects"]


@dataclass(frozen=True)
class CaptionType:
    """Where a caption falls on both axes."""

    spatial: bool
    objects: ObjectCount

    @property
    def groups(self) -> tuple[str, str]:
        return ("spatial" if self.spatial else "no spatial", self.objects)


def _noun(word: str) -> tuple[str, bool] | None:
    """(lemma, is plural) when `word` is a lexicon noun, else None."""
    if word in _SINGULAR:
        return word, False
    if word in _IRREGULAR_PLURALS:
        return word, True
    for suffix in ("es", "s"):
        stem = word.removesuffix(suffix)
        if stem != word and stem in _SINGULAR:
            return stem, True
    return None


def caption_type(text: str) -> CaptionType:
    """Classify one caption: spatial or not, and how many objects it names."""
    nouns = [n for n in (_noun(w) for w in _WORD.findall(text.lower())) if n is not None]
    distinct = {lemma for lemma, _ in nouns}
    if not distinct:
        objects: ObjectCount = "no known object"
    elif len(distinct) > 1 or any(plural for _, plural in nouns) or _COUNT_WORDS.search(text):
        objects = "several objects"
    else:
        objects = "one object"
    return CaptionType(spatial=bool(_SPATIAL.search(text)), objects=objects)


GROUPS: tuple[str, ...] = (
    "spatial",
    "no spatial",
    "one object",
    "several objects",
    "no known object",
)
