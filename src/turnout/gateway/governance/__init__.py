"""Cost governance: tenants, keys, the ledger, budgets, limits, caps and alerts."""

from ._alerts import Alert, Alerts
from ._database import Database, LedgerUnavailableError, ledger_url
from ._governor import Governor, RequestMeter, detail_summary
from ._image_caps import Capped, apply_cap
from ._ledger import AttemptPlan, Ledger, Reservation, Spent
from ._limits import (
    Admission,
    InProcessRateLimiter,
    Limits,
    RateLimiter,
    RedisRateLimiter,
    Subject,
    build_rate_limiter,
)
from ._policy import Periods, Policy, RateLimitPolicy
from ._tenants import (
    ANONYMOUS,
    Caller,
    KeyInfo,
    Tenant,
    TenantDirectory,
    check_tenant_id,
    check_user_id,
    parse_policy,
)
from ._worst_case import WorstCase, text_bound, worst_case

__all__ = [
    "ANONYMOUS",
    "Admission",
    "Alert",
    "Alerts",
    "AttemptPlan",
    "Caller",
    "Capped",
    "Database",
    "Governor",
    "InProcessRateLimiter",
    "KeyInfo",
    "Ledger",
    "LedgerUnavailableError",
    "Limits",
    "Periods",
    "Policy",
    "RateLimitPolicy",
    "RateLimiter",
    "RedisRateLimiter",
    "RequestMeter",
    "Reservation",
    "Spent",
    "Subject",
    "Tenant",
    "TenantDirectory",
    "WorstCase",
    "apply_cap",
    "build_rate_limiter",
    "check_tenant_id",
    "check_user_id",
    "detail_summary",
    "ledger_url",
    "parse_policy",
    "text_bound",
    "worst_case",
]
