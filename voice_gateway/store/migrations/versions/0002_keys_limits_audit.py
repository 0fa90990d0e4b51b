"""API key limits and rotation, retired key hashes, rate-limit counters, audit events.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("rate_limit_per_minute", sa.Integer))
        batch.add_column(sa.Column("rate_limit_window_seconds", sa.Integer))
        batch.add_column(sa.Column("max_concurrent_sessions", sa.Integer))
        batch.add_column(sa.Column("rotated_at", TS))
    op.create_table(
        "api_key_retired_hashes",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("retired_at", TS, nullable=False),
    )
    op.create_table(
        "rate_limit_counters",
        sa.Column("key_id", sa.String(40), primary_key=True),
        sa.Column("bucket", sa.String(32), primary_key=True),
        sa.Column("window_start", sa.BigInteger, primary_key=True),
        sa.Column("hits", sa.Integer, nullable=False),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(40)),
        sa.Column("actor_key_id", sa.String(40)),
        sa.Column("session_id", sa.String(40)),
        sa.Column("request_id", sa.String(64)),
        sa.Column("details", sa.JSON),
    )
    op.create_index("ix_audit_key_occurred", "audit_events", ["key_id", "occurred_at"])
    op.create_index("ix_audit_occurred", "audit_events", ["occurred_at"])
    op.create_index("ix_sessions_key_status", "sessions", ["api_key_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_sessions_key_status", "sessions")
    op.drop_index("ix_audit_occurred", "audit_events")
    op.drop_index("ix_audit_key_occurred", "audit_events")
    op.drop_table("audit_events")
    op.drop_table("rate_limit_counters")
    op.drop_table("api_key_retired_hashes")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("rotated_at")
        batch.drop_column("max_concurrent_sessions")
        batch.drop_column("rate_limit_window_seconds")
        batch.drop_column("rate_limit_per_minute")
