"""The first ledger schema: tenants, users, keys, spend, ledger, instances, alerts."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_table(
        "spend",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("period", sa.String(8), primary_key=True),
        sa.Column("starts", sa.String(10), primary_key=True),
        sa.Column("spent_micros", sa.BigInteger, nullable=False),
        sa.Column("reserved_micros", sa.BigInteger, nullable=False),
        sa.Column("overrun_micros", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ledger",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("instance_id", sa.String(32), nullable=False),
        sa.Column("route", sa.String(128), nullable=False),
        sa.Column("pattern", sa.String(16), nullable=False),
        sa.Column("tier", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(128), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("reserved_micros", sa.BigInteger, nullable=False),
        sa.Column("cost_micros", sa.BigInteger, nullable=False),
        sa.Column("overrun_micros", sa.BigInteger, nullable=False),
        sa.Column("text_tokens", sa.Integer, nullable=False),
        sa.Column("image_tokens", sa.Integer, nullable=False),
        sa.Column("audio_tokens", sa.Integer, nullable=False),
        sa.Column("cached_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("image_count", sa.Integer, nullable=False),
        sa.Column("image_detail", sa.String(64), nullable=False),
        sa.Column("latency_ms", sa.Integer, nullable=True),
        sa.Column("ttft_ms", sa.Integer, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("settled_at", _TS, nullable=True),
    )
    op.create_index("ix_ledger_request_id", "ledger", ["request_id"])
    op.create_index("ix_ledger_state", "ledger", ["state"])
    op.create_index("ix_ledger_tenant_created", "ledger", ["tenant_id", "created_at"])
    op.create_table(
        "instances",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("heartbeat_at", _TS, nullable=False),
        sa.Column("stopped_at", _TS, nullable=True),
    )
    op.create_table(
        "alerts",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("starts", sa.String(16), nullable=False),
        sa.Column("threshold", sa.Integer, nullable=False),
        sa.Column("spent_micros", sa.BigInteger, nullable=False),
        sa.Column("limit_micros", sa.BigInteger, nullable=True),
        sa.Column("fired_at", _TS, nullable=False),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.UniqueConstraint("tenant_id", "kind", "starts", "threshold", name="uq_alert_once"),
    )


def downgrade() -> None:
    for table in ("alerts", "instances", "ledger", "spend", "api_keys", "users", "tenants"):
        op.drop_table(table)
