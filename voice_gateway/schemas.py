"""Wire shapes of the public API (camelCase JSON), validated with pydantic at the edge."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from voice_gateway.store.models import (
    CallDirection,
    Channel,
    Modality,
    SessionRecord,
    SessionStatus,
    TranscriptSegment,
)

IDENTITY_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"
ROOM_NAME_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"
# The {room} of a path, as OpenAPI describes it.
ROOM_PARAM = {"type": "string", "pattern": ROOM_NAME_PATTERN}


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: object) -> object:
    """What JSON Schema's date-time means, and no more: pydantic alone would also read "0.5"
    as a Unix time or take a time without its offset. Parsed here, so strict validation of a
    JSON body (which refuses a str handed on by a validator) gets a datetime."""
    if not isinstance(value, str):
        return value
    if not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time such as 2026-01-31T09:00:00Z")
    return datetime.fromisoformat(value.upper())


# A date-time a client sends (body or query).
Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]


class _In(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")


class _Out(BaseModel):
    # Answers carry every field, null or not, so the documented schema requires them all.
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        json_schema_serialization_defaults_required=True,
    )


class StartSessionRequest(_In):
    agent_id: str = Field(min_length=1, max_length=64, examples=["demo"])
    user_identity: str | None = Field(default=None, pattern=IDENTITY_PATTERN)
    agent_config: dict[str, Any] | None = None
    # Answer only once the agent is in the room, within the request's bound if it names one (no
    # longer than the gateway's VOICEGW_WAIT_FOR_AGENT_TIMEOUT_SECONDS, also the default).
    wait_for_agent: bool = False
    wait_for_agent_timeout_seconds: float | None = Field(default=None, ge=1, le=300)


class EndSessionRequest(_In):
    room_name: str = Field(pattern=ROOM_NAME_PATTERN)


class StartSessionResponse(_Out):
    session_id: str
    room_name: str
    user_token: str
    livekit_url: str
    agent_id: str
    user_identity: str
    expires_at: datetime


class ParticipantView(_Out):
    identity: str | None
    joined_at: datetime | None


class ParticipantsView(_Out):
    user: ParticipantView
    agent: ParticipantView


class TimelineStep(_Out):
    step: str
    at: datetime | None
    ms_since_created: float | None
    ms_since_previous: float | None


def _ms(later: datetime, earlier: datetime) -> float:
    return round((later - earlier).total_seconds() * 1000, 1)


def setup_timeline(s: SessionRecord) -> list[TimelineStep]:
    """The setup of a session in the order it happened, with the milliseconds between steps, so
    a slow start can be explained after the fact. Steps that never happened come last, at null.
    Stamps come from three clocks: the gateway's (created to dispatched, job assigned), LiveKit's
    (joins) and the worker's (first agent audio)."""
    stamps: list[tuple[str, datetime | None]] = [
        ("created", s.created_at),
        ("roomCreated", s.room_created_at),
        ("dispatched", s.dispatched_at),
    ]
    if s.redispatched_at is not None:
        stamps.append(("redispatched", s.redispatched_at))
    stamps += [
        ("jobAssigned", s.job_assigned_at),
        ("agentJoined", s.agent_joined_at),
        ("userJoined", s.user_joined_at),
        ("firstAgentAudio", s.first_agent_audio_at),
    ]
    seen = sorted(((at, name) for name, at in stamps if at is not None), key=lambda x: x[0])
    steps: list[TimelineStep] = []
    previous: datetime | None = None
    for at, name in seen:
        steps.append(
            TimelineStep(
                step=name,
                at=at,
                ms_since_created=_ms(at, s.created_at),
                ms_since_previous=_ms(at, previous) if previous is not None else None,
            )
        )
        previous = at
    steps += [
        TimelineStep(step=name, at=None, ms_since_created=None, ms_since_previous=None)
        for name, at in stamps
        if at is None
    ]
    return steps


class PhoneView(_Out):
    direction: CallDirection
    caller_number: str
    called_number: str
    sip_call_id: str | None


class SessionView(_Out):
    session_id: str
    room_name: str
    agent_id: str
    user_identity: str
    channel: Channel
    status: SessionStatus
    end_reason: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    duration_seconds: float | None
    participants: ParticipantsView | None = None
    error: str | None = None
    dispatch_attempts: int | None = None
    timeline: list[TimelineStep] | None = None
    phone: PhoneView | None = None

    @classmethod
    def of(cls, s: SessionRecord, *, detail: bool = False) -> SessionView:
        duration = None
        if s.started_at and s.ended_at:
            duration = round((s.ended_at - s.started_at).total_seconds(), 3)
        return cls(
            session_id=s.id,
            room_name=s.room_name,
            agent_id=s.agent_id,
            user_identity=s.user_identity,
            channel=Channel(s.channel),
            status=s.status,
            end_reason=s.end_reason,
            created_at=s.created_at,
            started_at=s.started_at,
            ended_at=s.ended_at,
            duration_seconds=duration,
            participants=ParticipantsView(
                user=ParticipantView(identity=s.user_identity, joined_at=s.user_joined_at),
                agent=ParticipantView(identity=None, joined_at=s.agent_joined_at),
            )
            if detail
            else None,
            error=s.error if detail else None,
            dispatch_attempts=s.dispatch_attempts if detail else None,
            timeline=setup_timeline(s) if detail else None,
            phone=PhoneView(
                direction=CallDirection(s.phone.direction),
                caller_number=s.phone.caller_number,
                called_number=s.phone.called_number,
                sip_call_id=s.phone.sip_call_id,
            )
            if s.phone
            else None,
        )

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json", exclude_none=False)


class SessionListQuery(_In):
    status: list[Literal["starting", "ringing", "active", "ended", "failed"]] = Field(
        default_factory=list
    )
    agent_id: str | None = Field(default=None, max_length=64)
    user_identity: str | None = Field(default=None, pattern=IDENTITY_PATTERN)
    channel: Literal["web", "phone", "chat"] | None = None
    since: Timestamp | None = None
    until: Timestamp | None = None
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=50, ge=1, le=200)


class UsageQuery(_In):
    since: Timestamp | None = None
    until: Timestamp | None = None


class TranscriptSegmentView(_Out):
    speaker: str
    text: str
    spoken_at: datetime
    modality: Modality = Field(
        default=Modality.VOICE, description="`voice`: spoken (and captioned); `text`: typed"
    )

    @classmethod
    def of(cls, s: TranscriptSegment) -> TranscriptSegmentView:
        return cls(
            speaker=s.speaker, text=s.text, spoken_at=s.spoken_at, modality=Modality(s.modality)
        )

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")


class CountMeta(_Out):
    count: int


class PageMeta(CountMeta):
    limit: int
    next_cursor: str | None = Field(description="`cursor` for the next page; null on the last")


class SessionPage(_Out):
    data: list[SessionView]
    meta: PageMeta


class TranscriptView(_Out):
    session_id: str
    room_name: str
    segments: list[TranscriptSegmentView]


class UsageTotals(_Out):
    sessions: int
    minutes: float = Field(description="Of voice sessions (web and phone); chat has none")
    messages: int = Field(
        default=0,
        description="Messages users typed: in chat sessions and as typed turns of calls",
    )


class UsageView(_Out):
    since: datetime | None
    until: datetime | None
    total: UsageTotals
    agents: dict[str, UsageTotals]


class ErrorDetail(_Out):
    code: str = Field(description="A stable code, e.g. invalid_request")
    message: str = Field(description="What went wrong, for people; never holds a secret")
    request_id: str = Field(description="The request's X-Request-Id")


class ErrorResponse(_Out):
    error: ErrorDetail
