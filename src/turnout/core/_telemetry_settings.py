"""Settings of observability: traces, metrics, the per-request record."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TelemetrySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces "
        "(none: no traces are made).",
    )
    otlp_headers: dict[str, str] = Field(
        default_factory=dict, description="Headers sent to the OTLP endpoint (e.g. an API key)."
    )
    service_name: str = Field(default="turnout", description="`service.name` of the traces.")
    metrics: bool = Field(default=True, description="Serve Prometheus metrics on /metrics.")
    record_requests: bool = Field(
        default=True,
        description="Write one row per request (stage timings, modality, outcome) to the "
        "ledger database, in batches off the request path; the dashboard reads it.",
    )

    @field_validator("otlp_endpoint", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value == "" else value


class JudgeSettings(BaseModel):
    """Sampled judging of a route's answers, off the request path."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    every: int = Field(ge=1, description="Judge one request in this many (per route).")
    provider: str | None = Field(
        default=None, description="Provider of the judge model (none: local grounding only)."
    )
    model: str | None = Field(default=None, description="The judge model at that provider.")
    catalog: str | None = Field(default=None, description="Catalog id of the judge model.")
    timeout_s: float = Field(default=30.0, gt=0, description="Time the judge may take.")
    grounding: bool = Field(
        default=True,
        description="Also score grounding locally: answer sentences against the context by "
        "MiniLM embedding similarity (no provider call).",
    )
