"""Settings of the gateway: its listener, the upstream providers, and the routes.

Pure data, validated on load; cross-references (a route naming a provider, a tier a
catalog model) are checked when the gateway is built, with errors naming the key.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ._search_settings import RetrievalSettings
from ._telemetry_settings import JudgeSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListenSettings(_Strict):
    host: str = Field(default="127.0.0.1", description="Address the gateway listens on.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port the gateway listens on.")
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, gt=0, description="Largest request body accepted (413 above)."
    )
    deadline_s: float = Field(
        default=120.0, gt=0, description="Overall time a request may take, all attempts included."
    )
    shutdown_grace_s: float = Field(
        default=30.0, ge=0, description="How long shutdown waits for requests in flight."
    )
    image_types: tuple[str, ...] = Field(
        default=("png", "jpeg", "gif", "webp"),
        description="Image formats accepted in data: URIs (others get 415).",
    )


class RetrySettings(_Strict):
    attempts: int = Field(default=2, ge=0, le=10, description="Retries after the first try.")
    base_delay_s: float = Field(default=0.25, ge=0)
    max_delay_s: float = Field(default=8.0, ge=0)


class CircuitSettings(_Strict):
    failures: int = Field(default=5, ge=1, description="Failures in the window that open it.")
    window_s: float = Field(default=30.0, gt=0)
    cooldown_s: float = Field(default=15.0, gt=0, description="Open time before a probe.")


class ProviderSettings(_Strict):
    kind: Literal["openai", "openai_compatible", "gemini", "anthropic"]
    base_url: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=60.0, gt=0, description="Per-call timeout.")
    max_connections: int = Field(default=200, ge=1)
    headers: dict[str, str] = Field(default_factory=dict)
    allow_private_image_urls: bool = Field(
        default=False,
        description="Gemini: fetch image URLs that resolve to private or loopback addresses.",
    )
    retry: RetrySettings = RetrySettings()
    circuit: CircuitSettings = CircuitSettings()


class Deployment(_Strict):
    """One model on one provider. `catalog` names its catalog entry (default: `model`)."""

    provider: str
    model: str
    catalog: str | None = None

    @property
    def catalog_id(self) -> str:
        return self.catalog or self.model

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"


class Tier(_Strict):
    """A rung of a route's ladder: a primary deployment, then fallbacks on other providers."""

    name: str
    deployments: list[Deployment] = Field(min_length=1)


class RuleCondition(_Strict):
    images: bool | None = None
    min_images: int | None = Field(default=None, ge=0)
    min_image_pixels: int | None = Field(default=None, ge=0)
    min_text_chars: int | None = Field(default=None, ge=0)
    json_schema: bool | None = None
    tools: bool | None = None


class Rule(_Strict):
    when: RuleCondition
    start: str = Field(description="Tier to start at when the condition holds.")


class RegexCheck(_Strict):
    regex: str


class PythonCheck(_Strict):
    python: str = Field(description="'module:function' taking (answer, request) -> bool | str")


class ClassifierSettings(_Strict):
    """Pick the starting tier by similarity to labelled example prompts, when no rule holds."""

    encoder: str = Field(default="minilm", description="'minilm' or a local model directory.")
    examples: dict[str, list[str]] = Field(
        min_length=1, description="Example prompts by tier name; a tier's centroid stands for it."
    )
    margin: float = Field(
        default=0.02, ge=0, le=2, description="Lead over the runner-up needed to decide."
    )

    @field_validator("examples")
    @classmethod
    def _non_empty(cls, examples: dict[str, list[str]]) -> dict[str, list[str]]:
        for tier, prompts in examples.items():
            if not prompts or not all(p.strip() for p in prompts):
                raise ValueError(f"examples.{tier} needs at least one non-empty prompt")
        return examples


CheckName = Literal["empty", "refusal", "truncated", "json_schema", "citations"]
# `citations` applies where a retrieval step supplied items (the rag pattern).
_ALL_CHECKS: tuple[CheckName, ...] = ("empty", "refusal", "truncated", "json_schema", "citations")
CustomCheck = Annotated[RegexCheck | PythonCheck, Field(union_mode="left_to_right")]


class RouteSettings(_Strict):
    pattern: Literal["direct", "rag"] = Field(
        default="direct",
        description="direct: the request as sent; rag: a retrieval step first (`retrieval`).",
    )
    description: str = ""
    retrieval: RetrievalSettings | None = Field(
        default=None, description="The rag pattern's retrieval step (required with rag)."
    )
    tiers: list[Tier] = Field(min_length=1)
    rules: list[Rule] = Field(default_factory=list)
    classifier: ClassifierSettings | None = None
    checks: list[CheckName] = Field(default_factory=lambda: list(_ALL_CHECKS))
    require: list[CustomCheck] = Field(default_factory=list)
    image_cap: Literal["downscale", "reject"] = Field(
        default="downscale",
        description="Over a tenant's image-token cap: send images at low detail or smaller "
        "until the request fits (and say so in a header), or refuse it with 413.",
    )
    max_output_tokens: int | None = Field(
        default=None,
        gt=0,
        description="Output cap sent when a request sets none (default: "
        "governance.default_max_output_tokens); the budget reserves it.",
    )
    judge: JudgeSettings | None = Field(
        default=None, description="Sampled judging of this route's answers (default off)."
    )

    @field_validator("tiers")
    @classmethod
    def _unique_tiers(cls, tiers: list[Tier]) -> list[Tier]:
        names = [t.name for t in tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be unique, got {names}")
        return tiers

    @model_validator(mode="after")
    def _rag_has_retrieval(self) -> RouteSettings:
        if self.pattern == "rag" and self.retrieval is None:
            raise ValueError("pattern 'rag' needs `retrieval` (at least `collection`)")
        if self.pattern == "direct" and self.retrieval is not None:
            raise ValueError("`retrieval` is set but pattern is 'direct'; set pattern: rag")
        return self

    @model_validator(mode="after")
    def _rules_name_tiers(self) -> RouteSettings:
        names = {t.name for t in self.tiers}
        for i, rule in enumerate(self.rules):
            if rule.start not in names:
                raise ValueError(
                    f"rules[{i}].start {rule.start!r} is not a tier of this route {sorted(names)}"
                )
        if self.classifier is not None:
            for tier in self.classifier.examples:
                if tier not in names:
                    raise ValueError(
                        f"classifier.examples.{tier} is not a tier of this route {sorted(names)}"
                    )
        return self
