"""The ledger's tables (SQLAlchemy Core), one schema for SQLite and PostgreSQL.

Money is integer micro-dollars; timestamps are UTC. The migrations in `migrations/`
build exactly this schema (a test compares them).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("policy", Text, nullable=False),  # JSON of Policy
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),  # the public part of the key
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("user_id", String(128), nullable=True),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(64), nullable=False),  # sha256 hex of the secret part
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# Running totals per tenant and budget period; the hot path of every reservation.
spend = Table(
    "spend",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("period", String(8), primary_key=True),  # "day" | "month"
    Column("starts", String(10), primary_key=True),  # "2026-11-27" | "2026-11"
    Column("spent_micros", BigInteger, nullable=False, default=0),
    Column("reserved_micros", BigInteger, nullable=False, default=0),
    Column("overrun_micros", BigInteger, nullable=False, default=0),
)

# One row per attempt: written as a reservation before the call, settled after it.
ledger = Table(
    "ledger",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("request_id", String(64), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("user_id", String(128), nullable=True),
    Column("key_id", String(32), nullable=True),
    Column("instance_id", String(32), nullable=False),
    Column("route", String(128), nullable=False),
    Column("pattern", String(16), nullable=False),
    Column("tier", String(64), nullable=False),
    Column("provider", String(128), nullable=False),
    Column("model", String(200), nullable=False),
    Column("day", String(10), nullable=False),
    Column("month", String(7), nullable=False),
    # reserved | settled | released | refused | in_doubt
    Column("state", String(12), nullable=False, index=True),
    Column("outcome", String(32), nullable=True),
    Column("reason", String(200), nullable=True),
    Column("reserved_micros", BigInteger, nullable=False),
    Column("cost_micros", BigInteger, nullable=False, default=0),
    Column("overrun_micros", BigInteger, nullable=False, default=0),
    Column("text_tokens", Integer, nullable=False, default=0),
    Column("image_tokens", Integer, nullable=False, default=0),
    Column("audio_tokens", Integer, nullable=False, default=0),
    Column("cached_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("image_count", Integer, nullable=False, default=0),
    Column("image_detail", String(64), nullable=False, default=""),
    Column("latency_ms", Integer, nullable=True),
    Column("ttft_ms", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("settled_at", DateTime(timezone=True), nullable=True),
    Index("ix_ledger_tenant_created", "tenant_id", "created_at"),
)

# Gateway processes, so reservations left by a dead one can be found and reconciled.
instances = Table(
    "instances",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("stopped_at", DateTime(timezone=True), nullable=True),
)

# Each alert fires once per tenant, budget, period and threshold, across every replica.
alerts = Table(
    "alerts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # "day" | "month" | "burst"
    Column("starts", String(16), nullable=False),
    Column("threshold", Integer, nullable=False),
    Column("spent_micros", BigInteger, nullable=False),
    Column("limit_micros", BigInteger, nullable=True),
    Column("fired_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("payload", Text, nullable=False),
    UniqueConstraint("tenant_id", "kind", "starts", "threshold", name="uq_alert_once"),
)

# -- observability: one row per request, user feedback, sampled judgments --------------

# The request as a whole (the ledger has its attempts): what it carried, how it ended,
# where the time went. Written off the request path, in batches.
requests = Table(
    "requests",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("user_id", String(128), nullable=True),
    Column("route", String(128), nullable=False),
    Column("pattern", String(16), nullable=False),
    Column("start_tier", String(64), nullable=False),
    Column("tier", String(64), nullable=False),  # the tier that answered (or failed last)
    Column("model", String(200), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("escalations", String(200), nullable=False),  # reasons, comma-separated
    Column("outcome", String(32), nullable=False),  # ok | check_failed | error | stream_error
    Column("error_type", String(64), nullable=True),
    Column("status", Integer, nullable=False),
    Column("modality", String(16), nullable=False),  # text | image | audio | document
    Column("image_count", Integer, nullable=False),
    Column("image_detail", String(64), nullable=False),
    Column("text_tokens", Integer, nullable=False),
    Column("image_tokens", Integer, nullable=False),
    Column("audio_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cost_micros", BigInteger, nullable=False),
    Column("latency_ms", Integer, nullable=False),
    Column("ttft_ms", Integer, nullable=True),
    Column("stages", Text, nullable=False),  # JSON {stage: ms}
    Column("retrieved", Text, nullable=False),  # JSON [item ids]
    Column("gold_hit", Integer, nullable=True),  # 1/0 when the request named gold ids
    Column("recall_k", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_requests_tenant_created", "tenant_id", "created_at"),
    Index("ix_requests_created", "created_at"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("request_id", String(64), nullable=False, index=True),
    Column("tenant_id", String(64), nullable=False),
    Column("user_id", String(128), nullable=True),
    Column("rating", Integer, nullable=False),  # +1 thumbs up, -1 thumbs down
    Column("comment", Text, nullable=True),
    Column("labels", Text, nullable=False),  # JSON list
    Column("modality", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

judgments = Table(
    "judgments",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("request_id", String(64), nullable=False, index=True),
    Column("tenant_id", String(64), nullable=False),
    Column("route", String(128), nullable=False),
    Column("judge", String(200), nullable=False),  # judge model, or "minilm-grounding"
    Column("faithfulness", Float, nullable=True),
    Column("relevance", Float, nullable=True),
    Column("grounding", Float, nullable=True),
    Column("cost_micros", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # ok | failed | timeout
    Column("error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
