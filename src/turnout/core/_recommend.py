"""`recommend`: the cheapest model that meets a workload shape's constraints.

Every candidate is priced on the same typical query of the shape (its images counted by
the candidate's own image-token rule), then filtered by what the shape and the caller
require; survivors are ranked cheapest first, and every dropped model keeps its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._accounting import count_image_tokens, media_tokens
from ._catalog import Catalog, Modality, ModelCard
from ._errors import CatalogError, InvalidInputError, TurnoutError
from ._image_tokens import Detail
from ._pricing import Cost, cost
from ._usage import Usage


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkloadImage(_Strict):
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    detail: Detail = Detail.AUTO
    count: int = Field(default=1, gt=0)


class Workload(_Strict):
    """One typical query of a shape."""

    text_input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    images: tuple[WorkloadImage, ...] = ()
    audio_seconds: float = Field(default=0, ge=0)
    video_seconds: float = Field(default=0, ge=0)
    requests: int = Field(default=1, ge=1)


class Shape(_Strict):
    id: str
    title: str
    kind: Literal["chat", "encoder"]
    requires: tuple[Modality, ...]
    min_tier: int = Field(ge=1, le=4)
    p95_seconds: float = Field(gt=0)
    deploy: tuple[Literal["api", "server", "edge"], ...] | None = None
    workload: Workload
    retrieval: str
    seed_pick: str | None = None


def load_shapes() -> dict[str, Shape]:
    text = resources.files("turnout.core").joinpath("data/shapes.yaml").read_text("utf-8")
    raw = (yaml.safe_load(text) or {}).get("shapes", {})
    try:
        return {sid: Shape.model_validate({"id": sid, **body}) for sid, body in raw.items()}
    except ValidationError as exc:
        raise CatalogError(f"shapes.yaml: {exc}") from exc


@dataclass(frozen=True)
class Candidate:
    model: ModelCard
    usage: Usage
    cost: Cost

    @property
    def p95(self) -> float:
        return self.model.latency.p95


@dataclass(frozen=True)
class Dropped:
    model: ModelCard
    reason: str


@dataclass(frozen=True)
class Recommendation:
    shape: Shape
    p95_limit: float
    max_cost: Decimal | None
    ranked: tuple[Candidate, ...]
    dropped: tuple[Dropped, ...]


def price_workload(model: ModelCard, workload: Workload) -> tuple[Usage, Cost]:
    image_tokens = 0
    for image in workload.images:
        counted = count_image_tokens(model, image.width, image.height, image.detail)
        image_tokens += counted.tokens * image.count
    usage = Usage(
        text_input_tokens=workload.text_input_tokens,
        image_input_tokens=image_tokens,
        audio_input_tokens=media_tokens(model, "audio", workload.audio_seconds)
        if workload.audio_seconds
        else 0,
        video_input_tokens=media_tokens(model, "video", workload.video_seconds)
        if workload.video_seconds
        else 0,
        output_tokens=workload.output_tokens,
        requests=workload.requests,
    )
    return usage, cost(usage, model)


def recommend(
    catalog: Catalog,
    shape: Shape,
    *,
    p95: float | None = None,
    max_cost: Decimal | None = None,
    modalities: Sequence[Modality] = (),
    self_hosted: bool = False,
    min_tier: int | None = None,
) -> Recommendation:
    if p95 is not None and p95 <= 0:
        raise InvalidInputError(f"--p95 must be a positive number of seconds, got {p95}")
    if max_cost is not None and max_cost < 0:
        raise InvalidInputError(f"--max-cost must not be negative, got {max_cost}")
    p95_limit = p95 if p95 is not None else shape.p95_seconds
    tier = min_tier if min_tier is not None else shape.min_tier
    needed = tuple(dict.fromkeys((*shape.requires, *modalities)))
    ranked: list[Candidate] = []
    dropped: list[Dropped] = []
    for model in catalog:
        reason = _unsuitable(model, shape, needed, tier, self_hosted)
        if reason is None:
            try:
                usage, price = price_workload(model, shape.workload)
            except TurnoutError as exc:
                reason = f"cannot price the workload: {exc}"
            else:
                reason = _over_limits(model, usage, price, p95_limit, max_cost)
                if reason is None:
                    ranked.append(Candidate(model, usage, price))
        if reason is not None:
            dropped.append(Dropped(model, reason))
    ranked.sort(key=lambda c: (c.cost.exact, c.p95, -c.model.tier, c.model.id))
    return Recommendation(shape, p95_limit, max_cost, tuple(ranked), tuple(dropped))


def _unsuitable(
    model: ModelCard, shape: Shape, needed: Sequence[Modality], tier: int, self_hosted: bool
) -> str | None:
    if model.kind != shape.kind:
        wanted = "an encoder" if shape.kind == "encoder" else "a chat model"
        return f"{model.kind} model; this shape needs {wanted}"
    if self_hosted and not model.self_hosted:
        return "hosted API (--self-hosted asks for self-hosted models only)"
    if shape.deploy is not None and model.deploy not in shape.deploy:
        return f"deploys as {model.deploy}; this shape needs {' or '.join(shape.deploy)}"
    missing = [m for m in needed if not model.accepts(m)]
    if missing:
        return f"no {', '.join(missing)} input"
    if model.tier < tier:
        return f"quality tier {model.tier} below the {tier} this shape needs"
    return None


def _over_limits(
    model: ModelCard, usage: Usage, price: Cost, p95_limit: float, max_cost: Decimal | None
) -> str | None:
    if usage.input_tokens + usage.output_tokens > model.context_window:
        return (
            f"query needs {usage.input_tokens + usage.output_tokens:,} tokens; "
            f"context window is {model.context_window:,}"
        )
    if model.latency.p95 > p95_limit:
        return f"p95 {model.latency.p95:g} s over the {p95_limit:g} s limit"
    if max_cost is not None and price.exact > max_cost:
        return f"${price.total} per query over the ${max_cost} limit"
    return None
