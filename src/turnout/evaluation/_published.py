"""Published recall for standard splits, shipped as data, to print beside measured recall."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from turnout.core import ConfigError

_PUBLISHED_KS = (1, 5, 10)


@dataclass(frozen=True)
class PublishedRecall:
    """Published R@1/5/10 (percent, None where unpublished) of one model on one split."""

    model_id: str
    dataset: str
    source: str
    text_to_image: dict[int, float | None]
    image_to_text: dict[int, float | None]

    def value(self, direction: str, k: int) -> float | None:
        table = self.text_to_image if direction == "text_to_image" else self.image_to_text
        return table.get(k)


@cache
def _table() -> dict[str, Any]:
    text = resources.files("turnout.evaluation").joinpath("data/published_retrieval.yaml")
    try:
        data = yaml.safe_load(text.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"published_retrieval.yaml: cannot read shipped data: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("published_retrieval.yaml: expected a mapping")
    return data


def published_recall(model_id: str, dataset: str) -> PublishedRecall | None:
    """What was published for `model_id` on the standard `dataset` split, if anything."""
    data = _table()
    entry = data.get("models", {}).get(model_id)
    if not isinstance(entry, dict) or dataset not in entry:
        return None
    split = entry[dataset]
    source = data.get("sources", {}).get(entry.get("source"), str(entry.get("source")))

    def row(direction: str) -> dict[int, float | None]:
        values = (split.get(direction) or [None] * len(_PUBLISHED_KS))[: len(_PUBLISHED_KS)]
        return {
            k: (None if v is None else float(v)) for k, v in zip(_PUBLISHED_KS, values, strict=True)
        }

    return PublishedRecall(model_id, dataset, source, row("text_to_image"), row("image_to_text"))


def published_models() -> list[str]:
    return sorted(_table().get("models", {}))
