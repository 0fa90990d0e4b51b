"""Start that guarantees an agent: the setup timeline, the dispatch watch, idempotent starts, and
the agent workers' capacity reports.

Revision ID: 0006_start_guarantees
Revises: 0008_ops
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_start_guarantees"
down_revision = "0008_ops"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
STAMPS = (
    "room_created_at",
    "dispatched_at",
    "redispatched_at",
    "job_assigned_at",
    "first_agent_audio_at",
)


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        for name in STAMPS:
            batch.add_column(sa.Column(name, TS))
        batch.add_column(
            sa.Column("dispatch_attempts", sa.Integer, nullable=False, server_default="1")
        )
        batch.add_column(sa.Column("agent_job_id", sa.String(64)))
        batch.add_column(sa.Column("agent_worker_id", sa.String(64)))
        batch.add_column(sa.Column("idempotency_key", sa.String(255)))
        batch.add_column(sa.Column("request_fingerprint", sa.String(64)))
    op.create_index(
        "uq_sessions_key_idempotency", "sessions", ["api_key_id", "idempotency_key"], unique=True
    )
    op.create_table(
        "agent_workers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("agent_name", sa.String(128), nullable=False),
        sa.Column("live_sessions", sa.Integer, nullable=False),
        sa.Column("max_sessions", sa.Integer, nullable=False),
        sa.Column("draining", sa.Boolean, nullable=False),
        sa.Column("first_seen_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
    )
    op.create_index("ix_agent_workers_name_seen", "agent_workers", ["agent_name", "last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_agent_workers_name_seen", "agent_workers")
    op.drop_table("agent_workers")
    op.drop_index("uq_sessions_key_idempotency", "sessions")
    with op.batch_alter_table("sessions") as batch:
        for name in (
            "request_fingerprint",
            "idempotency_key",
            "agent_worker_id",
            "agent_job_id",
            "dispatch_attempts",
            *reversed(STAMPS),
        ):
            batch.drop_column(name)
