"""The schema, in SQLAlchemy Core so SQLite and PostgreSQL share one code path."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
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
    false,
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
    # 0004: web (a LiveKit client with a token), phone (a SIP call) or chat (text only).
    Column("channel", String(16), nullable=False, server_default="web"),
    # 0006: the setup timeline (stamps known during /start are written with its completing
    # update; the rest come from webhooks and worker reports), the dispatch watch's state, and
    # idempotent starts (a key is unique per API key; released when the start failed).
    Column("room_created_at", DateTime(timezone=True)),
    Column("dispatched_at", DateTime(timezone=True)),
    Column("redispatched_at", DateTime(timezone=True)),
    Column("job_assigned_at", DateTime(timezone=True)),
    Column("first_agent_audio_at", DateTime(timezone=True)),
    Column("dispatch_attempts", Integer, nullable=False, server_default="1"),
    Column("agent_job_id", String(64)),
    Column("agent_worker_id", String(64)),
    Column("idempotency_key", String(255)),
    Column("request_fingerprint", String(64)),
    # 0010_chat: a chat session's last message (its idle timeout counts from it) and the reply it
    # is producing now (one turn at a time, on every replica; NULL when none).
    Column("last_activity_at", DateTime(timezone=True)),
    Column("reply_started_at", DateTime(timezone=True)),
    # 0007: the phone side of a phone session (NULL for web sessions).
    Column("call_direction", String(8)),
    Column("caller_number", String(64)),
    Column("called_number", String(64)),
    Column("sip_call_id", String(256)),
    # 0013: the key ending the session, noted with end_reason before the room is deleted, so
    # the room_finished webhook that may close it first still audits who ended it.
    Column("ending_key_id", String(40)),
    Index("ix_sessions_status_created", "status", "created_at"),
    Index("ix_sessions_channel_status", "channel", "status"),
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
    # 0010_chat: how the line was said: `voice` (spoken, captioned) or `text` (typed).
    Column("modality", String(8), nullable=False, server_default="voice"),
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
    # 0002: limits (NULL: unlimited, as for the bootstrap owner key) and the last rotation.
    Column("rate_limit_per_minute", Integer),
    Column("rate_limit_window_seconds", Integer),
    Column("max_concurrent_sessions", Integer),
    Column("rotated_at", DateTime(timezone=True)),
    # 0005_browser: a secret key that may be sent from a web page (an ops console); else refused.
    Column("allow_browser", Boolean, nullable=False, server_default=false()),
)

# Hashes a rotation replaced: the bootstrap setting must not bring a rotated value back to life.
api_key_retired_hashes = Table(
    "api_key_retired_hashes",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("key_id", String(40), nullable=False),
    Column("retired_at", DateTime(timezone=True), nullable=False),
)

# Fixed-window request counters, one row per key, bucket and window, shared by every replica.
rate_limit_counters = Table(
    "rate_limit_counters",
    metadata,
    Column("key_id", String(40), primary_key=True),
    Column("bucket", String(32), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("hits", Integer, nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("event", String(32), nullable=False),
    Column("key_id", String(40)),
    Column("actor_key_id", String(40)),
    Column("session_id", String(40)),
    Column("request_id", String(64)),
    Column("details", JSON),
    Index("ix_audit_key_occurred", "key_id", "occurred_at"),
    Index("ix_audit_occurred", "occurred_at"),
    # 0008_ops: the audit API's other filters (GET /v1/audit).
    Index("ix_audit_actor_occurred", "actor_key_id", "occurred_at"),
    Index("ix_audit_session_occurred", "session_id", "occurred_at"),
    Index("ix_audit_event_occurred", "event", "occurred_at"),
)

# The concurrent-session cap counts a key's live sessions on every start.
Index("ix_sessions_key_status", sessions.c.api_key_id, sessions.c.status)

# Outgoing webhooks are written here first (an outbox) and delivered by a background task, so a
# slow or down receiver never blocks a request and a restart loses no event.
outbound_events = Table(
    "outbound_events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("event_type", String(32), nullable=False),
    Column("session_id", String(40), nullable=False),
    Column("url", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("deliver_after", DateTime(timezone=True), nullable=False),
    Column("claimed_until", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("delivered_at", DateTime(timezone=True)),
    Column("last_error", Text),
    Index("ix_outbound_due", "delivered_at", "deliver_after"),
    # 0012: the leader's sweep for events a dead replica never enqueued.
    Index("ix_outbound_session", "session_id", "event_type"),
)

Index("uq_sessions_key_idempotency", sessions.c.api_key_id, sessions.c.idempotency_key, unique=True)
# 0012: the leader's sweep reads the sessions started or ended in the last minutes.
Index("ix_sessions_started", sessions.c.started_at)
Index("ix_sessions_ended", sessions.c.ended_at)

# 0006: what each agent worker last reported (its LiveKit worker id, free capacity, draining), so
# every gateway replica can refuse a start no worker could take.
agent_workers = Table(
    "agent_workers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("agent_name", String(128), nullable=False),
    Column("live_sessions", Integer, nullable=False),
    Column("max_sessions", Integer, nullable=False),
    Column("draining", Boolean, nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Index("ix_agent_workers_name_seen", "agent_name", "last_seen_at"),
)

# 0007: phone numbers callers dial (each with its LiveKit inbound trunk, dispatch rule and the room
# its next call lands in) and the outbound trunks calls are placed through. LiveKit keeps its copy
# in Redis only; these rows are what it is rebuilt from.
phone_numbers = Table(
    "phone_numbers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("number", String(64), nullable=False, unique=True),
    Column("agent_id", String(64), nullable=False),
    Column("allowed_addresses", JSON, nullable=False),
    Column("auth_username", String(128)),
    Column("auth_password_encrypted", Text),
    Column("trunk_id", String(64)),
    Column("dispatch_rule_id", String(64)),
    Column("ready_room", String(128), unique=True),
    Column("api_key_id", String(40)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

outbound_trunks = Table(
    "outbound_trunks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("address", String(256), nullable=False),
    Column("transport", String(8), nullable=False),
    Column("numbers", JSON, nullable=False),
    Column("auth_username", String(128)),
    Column("auth_password_encrypted", Text),
    Column("trunk_id", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
