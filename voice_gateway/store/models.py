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
    # Phone calls: handed to a person, or flagged for one; and outbound calls nobody took.
    TRANSFERRED = "transferred"
    ESCALATED = "escalated"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CALL_FAILED = "call_failed"


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
    phone: PhoneLeg | None = None

    @property
    def is_over(self) -> bool:
        return self.status in (SessionStatus.ENDED, SessionStatus.FAILED)


@dataclass(frozen=True, slots=True)
class TranscriptSegment:
    segment_id: str
    speaker: str
    text: str
    spoken_at: datetime


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
