"""The model catalog: what each model accepts, charges and how fast it usually answers.

The catalog is data (`data/catalog.yaml`, shipped in the package). Users extend or
override it with their own YAML files of the same shape: an entry whose `id` already
exists is merged over the shipped one (so a file can change just a price), a new `id`
adds a model.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ._errors import CatalogError, UnknownModelError
from ._image_tokens import ImageTokenRule

Modality = Literal["text", "image", "audio", "video"]
Usd = Decimal  # USD; money is never a float


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Provider(_Strict):
    id: str
    name: str
    api: Literal["openai", "gemini", "anthropic", "openai_compatible"]
    pricing_url: str | None = None


class LongContextPrice(_Strict):
    """Rates that apply to the whole request once its input exceeds a threshold."""

    above_input_tokens: int = Field(gt=0)
    input: Usd = Field(ge=0)
    output: Usd = Field(ge=0)
    cached_input: Usd | None = Field(default=None, ge=0)


class Price(_Strict):
    """USD per million tokens unless the field says otherwise."""

    input: Usd = Field(ge=0)
    output: Usd = Field(ge=0)
    cached_input: Usd | None = Field(default=None, ge=0)
    image_input: Usd | None = Field(default=None, ge=0)
    audio_input: Usd | None = Field(default=None, ge=0)
    video_input: Usd | None = Field(default=None, ge=0)
    audio_output: Usd | None = Field(default=None, ge=0)
    per_image_output: Usd = Field(default=Decimal(0), ge=0)  # USD per generated image
    per_request: Usd = Field(default=Decimal(0), ge=0)  # USD per call (self-hosted encoders)
    long_context: LongContextPrice | None = None
    basis: Literal["list", "amortized", "device"] = "list"
    assumption: str | None = None
    source: str
    as_of: dt.date

    @model_validator(mode="after")
    def _amortized_states_assumption(self) -> Price:
        if self.basis != "list" and not self.assumption:
            raise ValueError(f"a price on a {self.basis!r} basis must state its assumption")
        return self


class Latency(_Strict):
    """Latency priors in seconds for a typical request of the model's kind."""

    p50: float = Field(gt=0)
    p95: float = Field(gt=0)
    source: str

    @model_validator(mode="after")
    def _ordered(self) -> Latency:
        if self.p95 < self.p50:
            raise ValueError("p95 must not be below p50")
        return self


class Modalities(_Strict):
    input: tuple[Modality, ...]
    output: tuple[Modality, ...]


class ModelCard(_Strict):
    id: str
    provider: str
    name: str
    aliases: tuple[str, ...] = ()
    kind: Literal["chat", "encoder"] = "chat"
    modalities: Modalities
    context_window: int = Field(gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    tier: int = Field(ge=1, le=4)  # 1 small ... 4 frontier
    price: Price
    image_tokens: ImageTokenRule | None = None
    audio_tokens_per_second: int | None = Field(default=None, gt=0)
    video_tokens_per_second: int | None = Field(default=None, gt=0)
    latency: Latency
    regions: tuple[str, ...] = ()
    deploy: Literal["api", "server", "edge"] = "api"
    notes: str | None = None

    @property
    def self_hosted(self) -> bool:
        return self.deploy != "api"

    def accepts(self, modality: Modality) -> bool:
        return modality in self.modalities.input

    @model_validator(mode="after")
    def _image_rule_present(self) -> ModelCard:
        if self.kind == "chat" and "image" in self.modalities.input and not self.image_tokens:
            raise ValueError("a model that accepts images needs an image_tokens rule")
        return self


class Catalog:
    """Providers and models, looked up by id or alias."""

    def __init__(self, providers: Mapping[str, Provider], models: Sequence[ModelCard]) -> None:
        self.providers = dict(providers)
        self._models = {m.id: m for m in models}
        self._names: dict[str, str] = {}
        for m in models:
            for name in (m.id, *m.aliases):
                self._names[name.lower()] = m.id

    def __iter__(self) -> Iterator[ModelCard]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._names

    def get(self, name: str) -> ModelCard:
        model_id = self._names.get(name.lower())
        if model_id is None:
            close = difflib.get_close_matches(name.lower(), list(self._names), n=3, cutoff=0.6)
            raise UnknownModelError(name, [self._names[c] for c in close])
        return self._models[model_id]


def _read_yaml(path: Path | str, text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not set(data) <= {"providers", "models"}:
        raise CatalogError(f"{path}: expected a mapping with 'providers' and/or 'models'")
    return data


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        prior = out.get(key)
        # A mapping naming a different image-token `rule` replaces the old one whole.
        mergeable = (
            isinstance(value, Mapping)
            and isinstance(prior, dict)
            and value.get("rule", prior.get("rule")) == prior.get("rule")
        )
        out[key] = _merge(prior, value) if mergeable else value  # type: ignore[arg-type]
    return out


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        if err["type"] == "missing":
            parts.append(f"{loc}: required field missing")
        else:
            parts.append(f"{loc or '(entry)'}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts)


def load_catalog(extra_files: Sequence[Path] = ()) -> Catalog:
    """The shipped catalog, with each of `extra_files` merged over it in order."""
    shipped = resources.files("turnout.core").joinpath("data/catalog.yaml")
    layers: list[tuple[str, dict[str, Any]]] = [
        ("turnout/core/data/catalog.yaml", _read_yaml("catalog.yaml", shipped.read_text("utf-8")))
    ]
    for path in extra_files:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise CatalogError(f"{path}: cannot read catalog file: {exc.strerror}") from exc
        layers.append((str(path), _read_yaml(path, text)))

    providers: dict[str, dict[str, Any]] = {}
    models: dict[str, tuple[str, dict[str, Any]]] = {}
    for origin, data in layers:
        for pid, entry in (data.get("providers") or {}).items():
            if not isinstance(entry, dict):
                raise CatalogError(f"{origin}: providers.{pid}: expected a mapping")
            providers[pid] = _merge(providers.get(pid, {"id": pid}), entry)
        for i, entry in enumerate(data.get("models") or []):
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise CatalogError(f"{origin}: models[{i}]: expected a mapping with a string 'id'")
            prior = models.get(entry["id"], (origin, {}))[1]
            models[entry["id"]] = (origin, _merge(prior, entry))

    try:
        parsed_providers = {pid: Provider.model_validate(p) for pid, p in providers.items()}
    except ValidationError as exc:
        raise CatalogError(f"catalog providers: {_describe(exc)}") from exc
    cards = []
    for model_id, (origin, entry) in models.items():
        try:
            card = ModelCard.model_validate(entry)
        except ValidationError as exc:
            raise CatalogError(f"{origin}: model {model_id!r}: {_describe(exc)}") from exc
        if card.provider not in parsed_providers:
            raise CatalogError(
                f"{origin}: model {model_id!r}: unknown provider {card.provider!r}; "
                f"expected one of {', '.join(sorted(parsed_providers))}"
            )
        cards.append(card)
    _check_names_unique(cards)
    return Catalog(parsed_providers, cards)


def _check_names_unique(cards: Sequence[ModelCard]) -> None:
    seen: dict[str, str] = {}
    for card in cards:
        for name in (card.id, *card.aliases):
            owner = seen.setdefault(name.lower(), card.id)
            if owner != card.id:
                raise CatalogError(f"model name {name!r} is used by both {owner!r} and {card.id!r}")
