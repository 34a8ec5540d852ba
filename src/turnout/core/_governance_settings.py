"""Settings of cost governance: where the ledger and the limit counters live, who is admin,
and where alerts go. Per-tenant policy (budgets, caps, limits) is data in the ledger's
database, set with `turnout tenants set` or the admin API, not here."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertSettings(_Strict):
    webhook_url: str | None = Field(
        default=None, description="URL that receives a JSON POST for every alert (none: log only)."
    )
    webhook_timeout_s: float = Field(default=5.0, gt=0, description="Timeout per webhook POST.")
    webhook_attempts: int = Field(
        default=5, ge=1, le=20, description="Tries per alert before it is given up (logged)."
    )
    burst_multiple: float = Field(
        default=0.5,
        gt=0,
        description="Flag a tenant whose last hour's spend exceeds this multiple of its "
        "average daily spend over the previous 7 days (0.5: an hour spent half a usual day).",
    )
    burst_min_usd: Decimal = Field(
        default=Decimal("5"), ge=0, description="Ignore bursts whose hour spends less than this."
    )

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value == "" else value  # `${VAR:-}` in YAML: unset means off


class GovernanceSettings(_Strict):
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the ledger (tenants, keys, spend). Default: SQLite file "
        "`ledger.db` under `home`; `postgresql+psycopg://...` for several gateway replicas.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for rate limits shared by several replicas (none: in process).",
    )
    admin_key: SecretStr | None = Field(
        default=None, description="Key for the admin API and dashboard (none: admin API off)."
    )
    require_keys: bool = Field(
        default=True,
        description="Refuse requests without a tenant key (401). Off: keyless requests belong "
        "to the tenant `anonymous`, which has no limits; for local experiments only.",
    )
    default_max_output_tokens: int = Field(
        default=4096,
        gt=0,
        description="Output tokens reserved for a request that sets no max_tokens "
        "(and the cap sent to the provider so the reservation holds).",
    )
    reconcile_interval_s: float = Field(
        default=60.0, gt=0, description="How often reservations left by dead replicas are settled."
    )
    instance_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="A replica silent this long is dead; its open reservations are reconciled.",
    )
    in_doubt: Literal["charge", "release"] = Field(
        default="charge",
        description="A reservation whose call may have been served but was never settled: "
        "charge its worst case (safe) or release it.",
    )
    alerts: AlertSettings = Field(default_factory=AlertSettings, description="Spend alerts.")

    @field_validator("database_url", "redis_url", "admin_key", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if value == "" else value  # `${VAR:-}` in YAML: unset means off
