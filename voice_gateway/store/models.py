"""Plain records the store hands out; handlers never see rows or SQL."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class SessionStatus(enum.StrEnum):
    STARTING = "starting"
    RINGING = "ringing"  # a phone call placed or arriving, not answered yet
    ACTIVE = "active"
    ENDED = "ended"
    FAILED = "failed"


# A session in these may hold a LiveKit room, and counts against its key's live sessions.
LIVE_STATUSES = (SessionStatus.STARTING, SessionStatus.RINGING, SessionStatus.ACTIVE)
# Its start has dispatched the agent (a phone session rings while the agent comes).
DISPATCHED_STATUSES = (SessionStatus.RINGING, SessionStatus.ACTIVE)


class Channel(enum.StrEnum):
    WEB = "web"
    PHONE = "phone"
    CHAT = "chat"


class EndReason(enum.StrEnum):
    CLIENT_ENDED = "client_ended"
    ROOM_FINISHED = "room_finished"
    MAX_DURATION = "max_duration"
    REAPED = "reaped"
    OPS_ENDED = "ops_ended"
    LIVEKIT_UNAVAILABLE = "livekit_unavailable"
    DISPATCH_FAILED = "dispatch_failed"
    AGENT_FAILED = "agent_failed"
    AGENT_LEFT = "agent_left"
    AGENT_NEVER_JOINED = "agent_never_joined"
    USER_NEVER_JOINED = "user_never_joined"
    NO_AGENT_AVAILABLE = "no_agent_available"
    # The LiveKit node hosting the room died: no webhook will ever come for it.
    LIVEKIT_NODE_LOST = "livekit_node_lost"
    # Phone calls: handed to a person, or flagged for one; and outbound calls nobody took.
    TRANSFERRED = "transferred"
    ESCALATED = "escalated"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CALL_FAILED = "call_failed"
    IDLE_TIMEOUT = "idle_timeout"  # a chat session nobody wrote in for the configured time


class Modality(enum.StrEnum):
    """How a transcript line was said: spoken (and captioned) or typed."""

    VOICE = "voice"
    TEXT = "text"


class CallDirection(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(frozen=True, slots=True)
class PhoneLeg:
    """The phone side of a `phone` session: who called whom, and the call's SIP Call-ID."""

    direction: str
    caller_number: str
    called_number: str
    sip_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    room_name: str
    agent_id: str
    user_identity: str
    status: SessionStatus
    end_reason: str | None
    error: str | None
    api_key_id: str | None
    agent_config: dict[str, Any]
    max_duration_seconds: int
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    user_joined_at: datetime | None
    agent_joined_at: datetime | None
    channel: str = Channel.WEB
    room_created_at: datetime | None = None
    dispatched_at: datetime | None = None
    redispatched_at: datetime | None = None
    job_assigned_at: datetime | None = None
    first_agent_audio_at: datetime | None = None
    dispatch_attempts: int = 1
    agent_job_id: str | None = None
    agent_worker_id: str | None = None
    idempotency_key: str | None = None
    request_fingerprint: str | None = None
    last_activity_at: datetime | None = None
    reply_started_at: datetime | None = None
    phone: PhoneLeg | None = None
    ending_key_id: str | None = None

    @property
    def is_chat(self) -> bool:
        """A text-only session: no LiveKit room, no agent worker."""
        return self.channel == Channel.CHAT

    @property
    def is_over(self) -> bool:
        return self.status in (SessionStatus.ENDED, SessionStatus.FAILED)

    @property
    def start_in_flight(self) -> bool:
        """Its start has not finished (or its gateway died before it did): `starting` rows of
        the older two-write start, and rows a start opened `active` whose dispatch stamp has not
        been written (StampWriter writes it a few ms after the dispatch). A chat is never
        dispatched: its one write finished its start, so a retry must not wait for a stamp."""
        if self.status == SessionStatus.STARTING:
            return True
        if self.is_chat:
            return False
        return self.status in DISPATCHED_STATUSES and self.dispatched_at is None

    @property
    def last_dispatched_at(self) -> datetime | None:
        return self.redispatched_at or self.dispatched_at


@dataclass(frozen=True, slots=True)
class StartStamps:
    """Setup stamps known while a start runs, kept in memory and written with its last update.
    For an inbound call the room is the number's ready room, made before the call: its stamp is
    when the call took it over."""

    room_created_at: datetime
    dispatched_at: datetime
    ringing: bool = False  # a phone session: active only once its call is answered


@dataclass(frozen=True, slots=True)
class WorkerState:
    """What an agent worker reports: its LiveKit worker id, agent name and capacity."""

    worker_id: str
    agent_name: str
    live_sessions: int
    max_sessions: int
    draining: bool

    @property
    def free_slots(self) -> int:
        return 0 if self.draining else max(0, self.max_sessions - self.live_sessions)


@dataclass(frozen=True, slots=True)
class WorkerReport(WorkerState):
    """A worker's state as it last reported it, and when (the gateway's clock)."""

    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class TranscriptSegment:
    segment_id: str
    speaker: str
    text: str
    spoken_at: datetime
    modality: str = Modality.VOICE


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    prefix: str
    key_hash: str
    kind: str
    name: str
    scopes: tuple[str, ...]
    agent_ids: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    rate_limit_per_minute: int | None = None
    rate_limit_window_seconds: int | None = None
    max_concurrent_sessions: int | None = None
    rotated_at: datetime | None = None
    allow_browser: bool = False


@dataclass(frozen=True, slots=True)
class PhoneNumberRecord:
    """A number callers dial, the agent that answers it, and what LiveKit holds for it: an inbound
    trunk, a dispatch rule and the room the next call lands in (`ready_room`, see
    services/phone_lines.py). The password is kept encrypted, for re-creating the trunk."""

    id: str
    number: str
    agent_id: str
    allowed_addresses: tuple[str, ...]
    auth_username: str | None
    auth_password_encrypted: str | None
    trunk_id: str | None
    dispatch_rule_id: str | None
    ready_room: str | None
    api_key_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OutboundTrunkRecord:
    id: str
    name: str
    address: str
    transport: str
    numbers: tuple[str, ...]
    auth_username: str | None
    auth_password_encrypted: str | None
    trunk_id: str | None
    created_at: datetime
