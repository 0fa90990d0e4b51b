"""Sessions, transcript segments and API keys.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("room_name", sa.String(128), nullable=False, unique=True),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("user_identity", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("end_reason", sa.String(32)),
        sa.Column("error", sa.Text),
        sa.Column("api_key_id", sa.String(40)),
        sa.Column("agent_config", sa.JSON, nullable=False),
        sa.Column("max_duration_seconds", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("ended_at", TS),
        sa.Column("user_joined_at", TS),
        sa.Column("agent_joined_at", TS),
    )
    op.create_index("ix_sessions_status_created", "sessions", ["status", "created_at"])
    op.create_index("ix_sessions_agent_created", "sessions", ["agent_id", "created_at"])
    op.create_table(
        "transcript_segments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(40), sa.ForeignKey("sessions.id"), nullable=False),
        sa.Column("segment_id", sa.String(128), nullable=False),
        sa.Column("speaker", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("spoken_at", TS, nullable=False),
        sa.UniqueConstraint("session_id", "segment_id", name="uq_segment_per_session"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("scopes", sa.JSON, nullable=False),
        sa.Column("agent_ids", sa.JSON, nullable=False),
        sa.Column("allowed_origins", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS),
        sa.Column("expires_at", TS),
        sa.Column("revoked_at", TS),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("transcript_segments")
    op.drop_index("ix_sessions_agent_created", "sessions")
    op.drop_index("ix_sessions_status_created", "sessions")
    op.drop_table("sessions")
