"""A tenant's policy: budgets, alert thresholds, image caps, what it may use, rate limits."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._limits import Limits


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RateLimitPolicy(_Strict):
    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    concurrent: int | None = Field(default=None, ge=1)

    def limits(self) -> Limits:
        return Limits(self.requests_per_minute, self.tokens_per_minute, self.concurrent)


class Policy(_Strict):
    daily_budget_usd: Decimal | None = Field(default=None, ge=0)
    monthly_budget_usd: Decimal | None = Field(default=None, ge=0)
    timezone: str = "UTC"
    alert_thresholds: list[int] = Field(default_factory=lambda: [50, 80, 100])
    image_token_cap: int | None = Field(
        default=None, ge=0, description="Image tokens one request may send, every image counted."
    )
    max_images: int | None = Field(default=None, ge=0, description="Images one request may send.")
    allowed_routes: list[str] | None = Field(default=None, description="None: every route.")
    allowed_models: list[str] | None = Field(
        default=None, description="Concrete models (deployment labels or model ids); None: all."
    )
    tenant_limits: RateLimitPolicy = Field(default_factory=RateLimitPolicy)
    user_limits: RateLimitPolicy = Field(default_factory=RateLimitPolicy)
    log_prompts: bool = False

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {zone!r} (an IANA name: Europe/Paris)") from exc
        return zone

    @field_validator("alert_thresholds")
    @classmethod
    def _percentages(cls, values: list[int]) -> list[int]:
        if any(v <= 0 or v > 1000 for v in values):
            raise ValueError("alert thresholds are percentages of a budget, 1 to 1000")
        return sorted(set(values))

    def allows_route(self, route: str) -> bool:
        return self.allowed_routes is None or route in self.allowed_routes

    def allows_model(self, *names: str) -> bool:
        return self.allowed_models is None or any(n in self.allowed_models for n in names)


class Periods:
    """The budget periods a moment falls in, in a tenant's time zone."""

    def __init__(self, timezone: str, now: datetime) -> None:
        local = now.astimezone(ZoneInfo(timezone))
        self.zone = timezone
        self.day = local.date().isoformat()
        self.month = local.strftime("%Y-%m")
        self._local = local

    def day_resets(self) -> datetime:
        tomorrow = self._local.date() + timedelta(days=1)
        return datetime.combine(tomorrow, datetime.min.time(), ZoneInfo(self.zone))

    def month_resets(self) -> datetime:
        first = self._local.date().replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return datetime.combine(following, datetime.min.time(), ZoneInfo(self.zone))


def parse_day(value: str) -> date:
    return date.fromisoformat(value)
