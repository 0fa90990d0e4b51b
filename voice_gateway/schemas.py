"""Wire shapes of the public API (camelCase JSON), validated with pydantic at the edge."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from voice_gateway.store.models import SessionRecord

IDENTITY_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"
ROOM_NAME_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"


class _In(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class StartSessionRequest(_In):
    agent_id: str = Field(min_length=1, max_length=64)
    user_identity: str | None = Field(default=None, pattern=IDENTITY_PATTERN)
    agent_config: dict[str, Any] | None = None


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


class PhoneView(_Out):
    direction: str
    caller_number: str
    called_number: str
    sip_call_id: str | None


class SessionView(_Out):
    session_id: str
    room_name: str
    agent_id: str
    user_identity: str
    channel: str
    status: str
    end_reason: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    duration_seconds: float | None
    participants: ParticipantsView | None = None
    error: str | None = None
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
            channel=s.channel,
            status=s.status.value,
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
            phone=PhoneView(
                direction=s.phone.direction,
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
    since: datetime | None = None
    until: datetime | None = None
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=50, ge=1, le=200)


class UsageQuery(_In):
    since: datetime | None = None
    until: datetime | None = None


class TranscriptSegmentView(_Out):
    speaker: str
    text: str
    spoken_at: datetime

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")
