"""What a retrieval evaluation returns: every number, with the arrays behind it for galleries."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ._published import PublishedRecall

Direction = Literal["text_to_image", "image_to_text"]
DIRECTIONS: tuple[Direction, ...] = ("text_to_image", "image_to_text")
ARROWS = {"text_to_image": "T->I", "image_to_text": "I->T"}


def _num(value: float | None, places: int = 6) -> float | None:
    return None if value is None or math.isnan(value) else round(value, places)


@dataclass(frozen=True)
class Recall:
    """Recall@k as a fraction, with its 95% bootstrap interval."""

    k: int
    value: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "recall": _num(self.value),
            "ci95": [_num(self.ci_low), _num(self.ci_high)],
        }


@dataclass(frozen=True)
class DirectionResult:
    direction: Direction
    n_queries: int
    recall: tuple[Recall, ...]

    def at(self, k: int) -> Recall | None:
        return next((r for r in self.recall if r.k == k), None)

    def to_dict(self) -> dict[str, Any]:
        return {"n_queries": self.n_queries, "recall_at": [r.to_dict() for r in self.recall]}


@dataclass(frozen=True)
class GroupRecall:
    """Recall of one caption group in one direction.

    Text-to-image: the caption queries of the group. Image-to-text: the captions of the
    group, each a hit when it ranks in the top k of its own image's query.
    """

    direction: Direction
    group: str
    n: int
    recall: dict[int, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "group": self.group,
            "n": self.n,
            "recall_at": {str(k): _num(v) for k, v in self.recall.items()},
        }


@dataclass(frozen=True)
class EncoderTimings:
    load_s: float
    images_s: float
    texts_s: float
    scoring_s: float
    images_encoded: int
    texts_encoded: int
    images_cached: int
    texts_cached: int

    @property
    def images_per_s(self) -> float | None:
        return (
            self.images_encoded / self.images_s if self.images_encoded and self.images_s else None
        )

    @property
    def texts_per_s(self) -> float | None:
        return self.texts_encoded / self.texts_s if self.texts_encoded and self.texts_s else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "load_s": _num(self.load_s, 3),
            "encode_images_s": _num(self.images_s, 3),
            "encode_texts_s": _num(self.texts_s, 3),
            "scoring_s": _num(self.scoring_s, 3),
            "images_encoded": self.images_encoded,
            "texts_encoded": self.texts_encoded,
            "images_from_cache": self.images_cached,
            "texts_from_cache": self.texts_cached,
            "images_per_s": _num(self.images_per_s, 2),
            "texts_per_s": _num(self.texts_per_s, 2),
        }


@dataclass
class EncoderResult:
    """One encoder's results on the dataset, and the vectors and ranks behind them."""

    name: str
    identity: dict[str, Any]
    fingerprint: str
    options: dict[str, Any]
    truncated_captions: int
    text_to_image: DirectionResult
    image_to_text: DirectionResult
    by_caption_type: list[GroupRecall]
    timings: EncoderTimings
    published: PublishedRecall | None
    image_vectors: NDArray[np.float32] = field(repr=False)
    text_vectors: NDArray[np.float32] = field(repr=False)
    t2i_ranks: NDArray[np.int64] = field(repr=False)
    i2t_ranks: NDArray[np.int64] = field(repr=False)
    i2t_caption_ranks: NDArray[np.int64] = field(repr=False)

    def direction(self, direction: Direction) -> DirectionResult:
        return self.text_to_image if direction == "text_to_image" else self.image_to_text

    def published_value(self, direction: Direction, k: int) -> float | None:
        """Published recall as a fraction, or None."""
        value = self.published.value(direction, k) if self.published else None
        return None if value is None else value / 100.0

    def to_dict(self) -> dict[str, Any]:
        comparison: dict[str, Any] | None = None
        if self.published is not None:
            comparison = {"source": self.published.source, "dataset": self.published.dataset}
            for direction in DIRECTIONS:
                rows = {}
                for r in self.direction(direction).recall:
                    pub = self.published_value(direction, r.k)
                    rows[str(r.k)] = {
                        "published": _num(pub),
                        "measured": _num(r.value),
                        "difference": None if pub is None else _num(r.value - pub),
                    }
                comparison[direction] = rows
        return {
            "encoder": self.name,
            "fingerprint": self.fingerprint,
            "identity": self.identity,
            "options": self.options,
            "embedding_dim": int(self.image_vectors.shape[1]),
            "truncated_captions": self.truncated_captions,
            "text_to_image": self.text_to_image.to_dict(),
            "image_to_text": self.image_to_text.to_dict(),
            "by_caption_type": [g.to_dict() for g in self.by_caption_type],
            "published": comparison,
            "timings": self.timings.to_dict(),
        }


@dataclass(frozen=True)
class SkippedImage:
    id: str
    path: str
    reason: str


@dataclass
class RetrievalReport:
    """The whole evaluation: the dataset as scored, each encoder's results, the environment."""

    dataset: dict[str, Any]
    ks: tuple[int, ...]
    encoders: list[EncoderResult]
    skipped: list[SkippedImage]
    versions: dict[str, str]
    created_at: str
    timings: dict[str, float]
    bootstrap: dict[str, Any]
    item_ids: list[str] = field(repr=False)
    item_paths: list[str] = field(repr=False)
    captions: list[str] = field(repr=False)
    caption_image: NDArray[np.int64] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at,
            "dataset": {**self.dataset, "skipped_images": len(self.skipped)},
            "skipped_images": [vars(s) for s in self.skipped],
            "k": list(self.ks),
            "metric": {
                "similarity": "cosine of L2-normalised embeddings, exact (every pair scored)",
                "text_to_image": "each caption queries all images; hit if its image is in top k",
                "image_to_text": "each image queries all captions; hit if any of its captions "
                "is in the top k",
                "ties": "an item scored equal to the gold item ranks ahead only if its index "
                "is lower (dataset order)",
                "confidence_interval": self.bootstrap,
            },
            "encoders": [e.to_dict() for e in self.encoders],
            "versions": self.versions,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }
