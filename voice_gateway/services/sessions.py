"""Starting and ending sessions: store writes and LiveKit calls ordered to leave nothing behind."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from pydantic import ValidationError

from voice_common.agent_config import AgentConfig, DispatchMetadata
from voice_gateway.catalogue import AgentCatalogue
from voice_gateway.config import GatewaySettings
from voice_gateway.errors import AgentNotFound, InvalidRequest, LiveKitUnavailable, SessionNotFound
from voice_gateway.services.audit import SessionAudit
from voice_gateway.services.keys import Principal
from voice_gateway.services.limits import StartLimiter, live_cap_error
from voice_gateway.services.livekit import LiveKitRooms
from voice_gateway.services.outgoing_webhooks import SESSION_ENDED, SESSION_STARTED, WebhookSender
from voice_gateway.store.database import now
from voice_gateway.store.limits import LiveCapReached
from voice_gateway.store.models import (
    Channel,
    EndReason,
    PhoneLeg,
    SessionRecord,
    SessionStatus,
)
from voice_gateway.store.sessions import SessionStore

log = structlog.get_logger("voice_gateway.sessions")

MAX_AGENT_CONFIG_BYTES = 16 * 1024
FAILURE_REASONS = frozenset(
    {
        EndReason.LIVEKIT_UNAVAILABLE,
        EndReason.DISPATCH_FAILED,
        EndReason.AGENT_FAILED,
        EndReason.CALL_FAILED,
    }
)


@dataclass(frozen=True, slots=True)
class NewSession:
    """What a session is started with, by any channel."""

    agent_id: str
    identity: str
    config: AgentConfig
    api_key_id: str | None = None
    live_cap: int | None = None
    channel: Channel = Channel.WEB
    phone: PhoneLeg | None = None
    # A room already made and recorded (a phone number's ready room); None: made here.
    room_name: str | None = None


@dataclass(frozen=True, slots=True)
class StartedSession:
    record: SessionRecord
    user_token: str
    livekit_url: str
    expires_at: datetime


class SessionService:
    def __init__(
        self,
        *,
        settings: GatewaySettings,
        catalogue: AgentCatalogue,
        store: SessionStore,
        livekit: LiveKitRooms,
        events: WebhookSender | None = None,
        limiter: StartLimiter | None = None,
        audit: SessionAudit | None = None,
    ) -> None:
        self._limiter = limiter
        self._audit = audit
        self._events = events
        self._settings = settings
        self._catalogue = catalogue
        self._store = store
        self._livekit = livekit

    def resolve_agent(
        self, agent_id: str, overrides: dict[str, Any] | None, *, principal: Principal | None = None
    ) -> AgentConfig:
        if principal is not None:
            principal.require_agent(agent_id)
        base = self._catalogue.get(agent_id)
        if base is None:
            raise AgentNotFound(f"no agent with id {agent_id!r}")
        if not overrides:
            return base
        if principal is not None:
            principal.require_overrides(overrides, self._catalogue.publishable_overrides(agent_id))
        try:
            return base.with_overrides(overrides)
        except ValidationError as exc:
            raise InvalidRequest(_describe(exc, prefix="agentConfig")) from None

    async def check_rate(self, principal: Principal) -> None:
        """Counts one start request against the key's rate limit (429 when over it); called
        before the body is read, so malformed and refused requests count too."""
        if self._limiter is not None:
            await self._limiter.check_rate(principal)

    async def start(
        self,
        *,
        principal: Principal,
        agent_id: str,
        user_identity: str | None,
        config: AgentConfig,
    ) -> StartedSession:
        principal.require_agent(agent_id)
        record = await self.open(
            NewSession(
                agent_id=agent_id,
                identity=user_identity or f"user-{secrets.token_hex(6)}",
                config=config,
                api_key_id=principal.key_id,
                live_cap=principal.limits.max_concurrent_sessions,
            )
        )
        token = self._livekit.user_token(room=record.room_name, identity=record.user_identity)
        record = await self._store.mark_active(record.id)
        log.info(
            "session_started",
            session_id=record.id,
            room=record.room_name,
            agent_id=agent_id,
            user_identity=record.user_identity,
        )
        await self._announce_start(record)
        return StartedSession(
            record=record,
            user_token=token,
            livekit_url=self._settings.client_livekit_url,
            expires_at=now() + timedelta(seconds=self._settings.token_ttl_seconds),
        )

    async def open(self, spec: NewSession) -> SessionRecord:
        """The one path every session starts by, whatever its channel: the row first, then the
        room (unless the session takes over a room already recorded: a phone number's ready
        room), then the agent's dispatch. A failure on the way deletes what LiveKit made and
        closes the row with the reason, so no room outlives its record and no record lies."""
        session_id = f"ses_{secrets.token_hex(12)}"
        room_name = spec.room_name or f"vgw-{spec.agent_id}-{secrets.token_hex(6)}"
        bound = log.bind(session_id=session_id, room=room_name, agent_id=spec.agent_id)
        try:
            record = await self._store.create(
                session_id=session_id,
                room_name=room_name,
                agent_id=spec.agent_id,
                user_identity=spec.identity,
                api_key_id=spec.api_key_id,
                agent_config=spec.config.model_dump(by_alias=True, mode="json"),
                max_duration_seconds=spec.config.max_duration_seconds,
                live_cap=spec.live_cap,
                channel=spec.channel,
                phone=spec.phone,
            )
        except LiveCapReached:
            raise live_cap_error(spec.live_cap or 0) from None
        if spec.room_name is None:
            try:
                await self._livekit.create_room(room_name, metadata={"sessionId": session_id})
            except LiveKitUnavailable as exc:
                await self._fail_start(session_id, EndReason.LIVEKIT_UNAVAILABLE, exc, bound)
                raise

        metadata = DispatchMetadata(
            session_id=session_id,
            agent_id=spec.agent_id,
            user_identity=spec.identity,
            config=spec.config,
            channel=spec.channel,
        ).model_dump_json(by_alias=True)
        try:
            await self._livekit.dispatch_agent(
                room_name, agent_name=self._settings.agent_name, metadata=metadata
            )
        except LiveKitUnavailable as exc:
            await self._undo_room(room_name, bound)
            await self._fail_start(session_id, EndReason.DISPATCH_FAILED, exc, bound)
            raise
        if spec.channel == Channel.PHONE:
            record = await self._store.mark_ringing(session_id)
        return record

    async def answered(self, room_name: str) -> SessionRecord:
        """A phone session's call was answered: from here on it is active and counts."""
        record = await self.get(room_name)
        if record.status != SessionStatus.RINGING:
            return record
        record = await self._store.mark_active(record.id)
        log.info("session_started", session_id=record.id, room=room_name, agent_id=record.agent_id)
        await self._announce_start(record)
        return record

    async def note_sip_call_id(self, room_name: str, call_id: str) -> None:
        record = await self.get(room_name)
        await self._store.set_sip_call_id(record.id, call_id)

    async def _announce_start(self, record: SessionRecord) -> None:
        if self._audit is not None:
            await self._audit.started(record)
        if self._events is not None:
            await self._events.enqueue(SESSION_STARTED, record.id)

    async def end(
        self,
        room_name: str,
        *,
        reason: str = EndReason.CLIENT_ENDED,
        actor: Principal | None = None,
    ) -> SessionRecord:
        """Idempotent: ending an ended session answers the record as it was first ended."""
        record = await self.get(room_name)
        if actor is not None:
            actor.require_may_end(record.api_key_id)
        return await self._close(
            record,
            status=SessionStatus.ENDED,
            reason=reason,
            actor_key_id=actor.key_id if actor else None,
        )

    async def fail(self, room_name: str, *, reason: str, error: str) -> SessionRecord:
        """The agent cannot run this session: close the room so the user is not left in silence."""
        record = await self.get(room_name)
        return await self._close(record, status=SessionStatus.FAILED, reason=reason, error=error)

    async def room_finished(self, room_name: str) -> SessionRecord | None:
        """LiveKit closed the room (everyone left, or it was deleted): the session is over."""
        record = await self._store.get_by_room(room_name)
        if record is None:
            return None
        # If the room went because we deleted it, LiveKit's webhook can beat our own write:
        # the reason we recorded before deleting is the true one.
        reason = record.end_reason or EndReason.ROOM_FINISHED
        status = SessionStatus.FAILED if reason in FAILURE_REASONS else SessionStatus.ENDED
        return await self._close(
            record, status=status, reason=reason, error=record.error, delete_room=False
        )

    async def participant_joined(self, room_name: str, *, who: str, at: datetime) -> None:
        record = await self._store.get_by_room(room_name)
        if record is not None:
            await self._store.record_join(record.id, who=who, at=at)

    async def participant_left(self, room_name: str, *, who: str) -> None:
        """The agent leaving a live session means its worker died or gave up: the caller would
        otherwise sit in a silent room, so the room is closed now."""
        record = await self._store.get_by_room(room_name)
        if record is None or record.is_over or who != "agent":
            return
        if not await self._livekit.has_users(room_name):
            return  # the caller left first; LiveKit's room_finished ends the session
        await self._close(record, status=SessionStatus.ENDED, reason=EndReason.AGENT_LEFT)

    async def _close(
        self,
        record: SessionRecord,
        *,
        status: SessionStatus,
        reason: str,
        error: str | None = None,
        delete_room: bool = True,
        actor_key_id: str | None = None,
    ) -> SessionRecord:
        """Every way a session ends comes through here: room first, then the record, then the
        session.ended event, so a failure to delete leaves the session live for a retry."""
        if record.is_over:
            return record
        bound = log.bind(session_id=record.id, room=record.room_name, agent_id=record.agent_id)
        room_existed = False
        if delete_room:
            await self._store.mark_ending(record.id, reason=reason, error=error)
            try:
                room_existed = await self._livekit.delete_room(record.room_name)
            except LiveKitUnavailable:
                await self._store.mark_ending(record.id, reason=None, error=None)
                raise
        closed, changed = await self._store.finish(
            record.id, status=status, reason=reason, error=error
        )
        if changed:
            bound.info(
                "session_ended", status=status.value, reason=reason, room_existed=room_existed
            )
            if self._audit is not None:
                await self._audit.ended(closed, actor_key_id=actor_key_id)
            # A phone call nobody answered still ends with an event: the dialer needs the outcome.
            announced = closed.started_at is not None or closed.channel == Channel.PHONE
            if self._events is not None and announced:
                await self._events.enqueue(SESSION_ENDED, record.id)
        return closed

    async def get(self, room_name: str) -> SessionRecord:
        record = await self._store.get_by_room(room_name)
        if record is None:
            raise SessionNotFound(f"no session for room {room_name!r}")
        return record

    async def _fail_start(
        self, session_id: str, reason: EndReason, exc: LiveKitUnavailable, bound: Any
    ) -> None:
        await self._store.finish(
            session_id, status=SessionStatus.FAILED, reason=reason, error=exc.message
        )
        bound.warning("session_start_failed", reason=reason.value, error=exc.message)

    async def _undo_room(self, room_name: str, bound: Any) -> None:
        try:
            await self._livekit.delete_room(room_name)
        except LiveKitUnavailable as exc:
            # LiveKit's empty_timeout closes the room anyway; the failed row says what happened.
            bound.warning("room_cleanup_failed", error=exc.message)


def _describe(exc: ValidationError, *, prefix: str = "") -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in ((prefix,) if prefix else ()) + tuple(err["loc"]))
        parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
    return "; ".join(parts)


describe_validation_error = _describe
