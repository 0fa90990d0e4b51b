"""The schema, in SQLAlchemy Core so SQLite and PostgreSQL share one code path."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("room_name", String(128), nullable=False, unique=True),
    Column("agent_id", String(64), nullable=False),
    Column("user_identity", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("end_reason", String(32)),
    Column("error", Text),
    Column("api_key_id", String(40)),
    Column("agent_config", JSON, nullable=False),
    Column("max_duration_seconds", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("user_joined_at", DateTime(timezone=True)),
    Column("agent_joined_at", DateTime(timezone=True)),
    Index("ix_sessions_status_created", "status", "created_at"),
    Index("ix_sessions_agent_created", "agent_id", "created_at"),
)

transcript_segments = Table(
    "transcript_segments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(40), ForeignKey("sessions.id"), nullable=False),
    Column("segment_id", String(128), nullable=False),
    Column("speaker", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("spoken_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("session_id", "segment_id", name="uq_segment_per_session"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("prefix", String(32), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(128), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("agent_ids", JSON, nullable=False),
    Column("allowed_origins", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)
