"""Starting and ending sessions: store writes and LiveKit calls ordered to leave nothing behind."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from pydantic import ValidationError

from voice_common.agent_config import AgentConfig
from voice_gateway.catalogue import AgentCatalogue
from voice_gateway.config import GatewaySettings
from voice_gateway.errors import (
    AgentNotFound,
    AgentTimeout,
    IdempotencyInProgress,
    InvalidRequest,
    JobNotWanted,
    LiveKitUnavailable,
    NoAgentAvailable,
    PayloadTooLarge,
    SessionNotFound,
)
from voice_gateway.metrics import SESSIONS_ENDED, SESSIONS_STARTED, StartTimer
from voice_gateway.services import idempotency
from voice_gateway.services.agent_wait import AgentArrivals
from voice_gateway.services.audit import SessionAudit
from voice_gateway.services.capacity import AgentCapacity
from voice_gateway.services.dispatch_watch import DispatchWatch, dispatch_metadata
from voice_gateway.services.keys import Principal
from voice_gateway.services.limits import RateTicket, StartLimiter, live_cap_error
from voice_gateway.services.livekit import LiveKitRooms, ParticipantDetails, RoomAgent
from voice_gateway.services.outgoing_webhooks import SESSION_ENDED, SESSION_STARTED, WebhookSender
from voice_gateway.services.start_stamps import StampWriter
from voice_gateway.store.database import now
from voice_gateway.store.limits import LiveCapReached, RateLimitReached
from voice_gateway.store.models import (
    Channel,
    EndReason,
    PhoneLeg,
    SessionRecord,
    SessionStatus,
    StartStamps,
)
from voice_gateway.store.sessions import (
    IdempotencyKeyTaken,
    JobClaim,
    Refusal,
    SessionStore,
    StartWrite,
)

log = structlog.get_logger("voice_gateway.sessions")

MAX_AGENT_CONFIG_BYTES = 16 * 1024
FAILURE_REASONS = frozenset(
    {
        EndReason.LIVEKIT_UNAVAILABLE,
        EndReason.DISPATCH_FAILED,
        EndReason.AGENT_FAILED,
        EndReason.AGENT_NEVER_JOINED,
        EndReason.NO_AGENT_AVAILABLE,
        EndReason.CALL_FAILED,
    }
)


@dataclass(frozen=True, slots=True)
class NewSession:
    """What a session is opened with, whatever its channel (see SessionService.open)."""

    agent_id: str
    identity: str
    config: AgentConfig
    api_key_id: str | None = None
    live_cap: int | None = None
    channel: Channel = Channel.WEB
    phone: PhoneLeg | None = None
    # A room already made and recorded (a phone number's ready room, the caller in it); None:
    # one is made here.
    room_name: str | None = None
    # An Idempotency-Key and the fingerprint of the request that carried it (see open_once).
    idempotency_key: str | None = None
    fingerprint: str | None = None
    # The request's place in its key's rate window, counted in the start's one write.
    rate: RateTicket | None = None


@dataclass(frozen=True, slots=True)
class StartedSession:
    record: SessionRecord
    user_token: str
    livekit_url: str
    expires_at: datetime
    replayed: bool = False  # an earlier request with the same Idempotency-Key made it


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
        capacity: AgentCapacity | None = None,
    ) -> None:
        self._limiter = limiter
        self._audit = audit
        self._events = events
        self._settings = settings
        self._catalogue = catalogue
        self._store = store
        self._livekit = livekit
        self._capacity = capacity
        self._arrivals = AgentArrivals(store, livekit)
        self._idempotent = idempotency.IdempotentStarts(store, settings.idempotency_window_seconds)
        self.watch = DispatchWatch(
            settings=settings,
            store=store,
            livekit=livekit,
            give_up=self._give_up,
            capacity=capacity,
        )
        self.stamps = StampWriter(store)

    async def aclose(self) -> None:
        await self.watch.aclose()
        await self.stamps.aclose()

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

    def resolve_requested(
        self, agent_id: str, overrides: dict[str, Any] | None, *, principal: Principal
    ) -> AgentConfig:
        """A request's agent and its agentConfig overrides: size, the key's rights, validity."""
        _check_config_size(overrides)
        return self.resolve_agent(agent_id, overrides, principal=principal)

    async def start_requested(
        self,
        *,
        principal: Principal,
        agent_id: str,
        user_identity: str | None,
        overrides: dict[str, Any] | None,
        participant: ParticipantDetails | None = None,
        wait_for_agent: bool = False,
        wait_for_agent_seconds: float | None = None,
        idempotency_key: str | None = None,
        rate: RateTicket | None = None,
    ) -> StartedSession:
        """A client's start (/v1/sessions/start or LiveKit's token endpoint): its agentConfig
        overrides checked and resolved against what the key may set, then start()."""
        config = self.resolve_requested(agent_id, overrides, principal=principal)
        return await self.start(
            principal=principal,
            agent_id=agent_id,
            user_identity=user_identity,
            config=config,
            participant=participant,
            wait_for_agent=wait_for_agent,
            wait_for_agent_seconds=wait_for_agent_seconds,
            idempotency_key=idempotency_key,
            rate=rate,
        )

    async def check_rate(self, principal: Principal) -> None:
        """Counts one request against the key's rate limit now, in its own write (429 when over
        it): for starts outside rate_counted (an outbound call is placed through its own path)."""
        if self._limiter is not None:
            await self._limiter.check_rate(principal)

    @asynccontextmanager
    async def rate_counted(self, principal: Principal) -> AsyncIterator[RateTicket | None]:
        """Wraps one start request: the start's own transaction counts it against the key's
        rate limit (pass the ticket to start_requested); a request that fails before that is
        counted on its way out, so malformed and refused requests count too, and one over the
        key's rate answers 429 rather than its own error."""
        ticket = self._limiter.ticket(principal) if self._limiter is not None else None
        try:
            yield ticket
        except Exception:
            if self._limiter is not None and ticket is not None:
                await self._limiter.settle(ticket)
            raise

    async def start(
        self,
        *,
        principal: Principal,
        agent_id: str,
        user_identity: str | None,
        config: AgentConfig,
        participant: ParticipantDetails | None = None,
        wait_for_agent: bool = False,
        wait_for_agent_seconds: float | None = None,
        idempotency_key: str | None = None,
        rate: RateTicket | None = None,
    ) -> StartedSession:
        """Starts a session whose agent is guaranteed to come or whose failure is told: no worker
        capacity is 503 no_agent_available before any room exists; the dispatch is watched;
        with `wait_for_agent` the answer comes once the agent is in the room, within
        `wait_for_agent_seconds` (at most, and by default, the gateway's setting; 504 otherwise).
        The same `idempotency_key` and request answer the same session, on any replica."""
        principal.require_agent(agent_id)
        wait = None
        if wait_for_agent:
            most = self._settings.wait_for_agent_timeout_seconds
            wait = min(wait_for_agent_seconds or most, most)
        fingerprint = None
        if idempotency_key is not None:
            fingerprint = idempotency.fingerprint(
                agent_id=agent_id, user_identity=user_identity, config=config
            )
        record, replayed = await self.open_once(
            NewSession(
                agent_id=agent_id,
                identity=user_identity or f"user-{secrets.token_hex(6)}",
                config=config,
                api_key_id=principal.key_id,
                live_cap=principal.limits.max_concurrent_sessions,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
                rate=rate,
            )
        )
        return await self._answer(record, wait, participant, replayed=replayed)

    async def open_once(self, spec: NewSession) -> tuple[SessionRecord, bool]:
        """open(), once per Idempotency-Key: a retry with the key and the same request answers
        the session the first request opened (True), on any replica; the key with another
        request is 409 idempotency_conflict."""
        key, fingerprint, owner = spec.idempotency_key, spec.fingerprint, spec.api_key_id
        if key is None or fingerprint is None or owner is None:
            return await self.open(spec), False
        for _ in range(2):
            earlier = await self._idempotent.earlier(owner, key, fingerprint)
            if earlier is not None:
                return earlier, True
            try:
                return await self.open(spec), False
            except IdempotencyKeyTaken:
                continue  # a concurrent request with this key won the insert: answer its session
        raise IdempotencyInProgress(
            f"another request with this {idempotency.HEADER} is still starting; retry",
            retry_after_seconds=1,
        )

    async def open(self, spec: NewSession) -> SessionRecord:
        """The one path every session starts by, whatever its channel (a web start, LiveKit's
        token endpoint, an inbound or an outbound call, a chat): capacity first (none: refused
        before any room, a failed row says so), then the start's one store write
        (SessionStore.open: the row in its final state with the rate-limit hit, the live cap, and
        for a web or chat session its audit row and session.started events), then the room
        (unless the session takes over a room already recorded: a phone number's ready room),
        then the agent's dispatch, which the dispatch watch follows. A LiveKit failure is the
        only update (fail_start): it deletes what LiveKit made and closes the row, so no room
        outlives its record and no record lies. The setup stamps go to the StampWriter, off the
        request path. A web session is active at once; a phone session rings until its call is
        answered. A chat session has no room and no agent worker (the gateway answers it,
        services/chat.py): its roomName is its session id, and the one write, active, finishes
        its start (no LiveKit call, no stamps)."""
        session_id = f"ses_{secrets.token_hex(12)}"
        chat = spec.channel == Channel.CHAT
        room_name = (
            session_id if chat else spec.room_name or f"vgw-{spec.agent_id}-{secrets.token_hex(6)}"
        )
        bound = log.bind(
            session_id=session_id, room=room_name, agent_id=spec.agent_id, channel=spec.channel
        )
        row: dict[str, Any] = {
            "session_id": session_id,
            "room_name": room_name,
            "agent_id": spec.agent_id,
            "user_identity": spec.identity,
            "api_key_id": spec.api_key_id,
            "agent_config": spec.config.model_dump(by_alias=True, mode="json"),
            "max_duration_seconds": spec.config.max_duration_seconds,
            "channel": spec.channel,
            "phone": spec.phone,
        }
        if not chat:  # a chat takes no agent worker's slot
            await self._require_capacity(row, taken_room=spec.room_name, bound=bound)
        timer = StartTimer()
        ringing = spec.channel == Channel.PHONE
        rate = spec.rate
        write = StartWrite(
            live_cap=spec.live_cap,
            rate=rate.window if rate is not None and not rate.counted else None,
            # A ringing call is announced (audited, told) once it is answered, not here.
            audit=SessionAudit.started_entry(
                key_id=spec.api_key_id,
                session_id=session_id,
                agent_id=spec.agent_id,
                room_name=room_name,
            )
            if self._audit is not None and not ringing
            else None,
            events=self._events.rows(SESSION_STARTED, session_id)
            if self._events is not None and not ringing
            else [],
        )
        try:
            record = await self._store.open(
                write,
                ringing=ringing,
                **row,
                idempotency_key=spec.idempotency_key,
                request_fingerprint=spec.fingerprint,
            )
        except RateLimitReached:
            assert rate is not None
            rate.counted = True
            raise rate.refusal() from None
        except LiveCapReached:
            raise live_cap_error(spec.live_cap or 0) from None
        if rate is not None:
            rate.counted = True
        if chat:  # its audit row and events committed with the row; no room, no dispatch
            self._count_start(record)
            return record
        timer.lap("reserve")
        agent = RoomAgent(
            agent_name=self._settings.agent_name,
            metadata=dispatch_metadata(
                session_id=session_id,
                agent_id=spec.agent_id,
                user_identity=spec.identity,
                config=spec.config,
                attempt=1,
                channel=spec.channel,
            ),
        )
        if spec.room_name is None:
            # One call makes the room and its dispatch. Should it fail after LiveKit made them
            # (a timeout), the session is failed first, so the agent's job is refused, and the
            # room is deleted, which removes an agent that claimed the job before that.
            try:
                await self._livekit.create_room(
                    room_name, metadata={"sessionId": session_id}, agent=agent
                )
            except LiveKitUnavailable as exc:
                await self._fail_start(record, EndReason.LIVEKIT_UNAVAILABLE, exc, bound, None)
                await self._undo_room(room_name, bound)
                raise
            room_created_at = dispatched_at = now()
            timer.lap("create_room")
        else:
            room_created_at = now()  # an inbound call's room exists: its agent is dispatched
            try:
                await self._livekit.dispatch_agent(
                    room_name, agent_name=agent.agent_name, metadata=agent.metadata
                )
            except LiveKitUnavailable as exc:
                await self._undo_room(room_name, bound)
                await self._fail_start(
                    record, EndReason.DISPATCH_FAILED, exc, bound, room_created_at
                )
                raise
            dispatched_at = now()
            timer.lap("dispatch")
        stamps = StartStamps(
            room_created_at=room_created_at,
            dispatched_at=dispatched_at,
            ringing=spec.channel == Channel.PHONE,
        )
        self.stamps.add(session_id, stamps)
        record = replace(
            record, room_created_at=stamps.room_created_at, dispatched_at=stamps.dispatched_at
        )
        timer.done("activate")  # no store write any more: the stamps are handed to the writer
        self.watch.follow(session_id)
        if record.status == SessionStatus.ACTIVE:
            self._count_start(record)  # its audit row and events committed with the row
        else:
            bound.info("session_ringing", user_identity=spec.identity)
        return record

    async def _require_capacity(
        self, row: dict[str, Any], *, taken_room: str | None, bound: Any
    ) -> None:
        """The capacity pre-flight. A refused start is recorded failed (no_agent_available) and
        makes no room; an inbound call already waits in its number's ready room, which is
        deleted, so LiveKit's SIP service rejects the ringing call (486 Busy Here) at once
        rather than letting it ring in silence."""
        if self._capacity is None:
            return
        try:
            await self._capacity.require()
        except NoAgentAvailable as exc:
            await self._store.create(
                **row, refused=Refusal(EndReason.NO_AGENT_AVAILABLE, exc.message)
            )
            if taken_room is not None:
                await self._undo_room(taken_room, bound)
            bound.warning("session_refused", reason=EndReason.NO_AGENT_AVAILABLE.value)
            raise

    async def answered(self, room_name: str) -> SessionRecord:
        """A phone session's call was answered (the worker saw it, or the dialer was told):
        from here on it is active, and it is announced as started once."""
        record = await self.get(room_name)
        if record.status != SessionStatus.RINGING:
            return record
        record, changed = await self._store.mark_answered(record.id)
        if changed:
            await self._announce_start(record)
        return record

    async def note_sip_call_id(self, room_name: str, call_id: str) -> None:
        record = await self.get(room_name)
        await self._store.set_sip_call_id(record.id, call_id)

    async def _announce_start(self, record: SessionRecord) -> None:
        """A phone session's start, once answered: counted, logged, audited and told."""
        self._count_start(record)
        if self._audit is not None:
            await self._audit.started(record)
        if self._events is not None:
            await self._events.enqueue(SESSION_STARTED, record.id)

    def _count_start(self, record: SessionRecord) -> None:
        SESSIONS_STARTED.labels(agent=record.agent_id, channel=record.channel).inc()
        log.info(
            "session_started",
            session_id=record.id,
            room=record.room_name,
            agent_id=record.agent_id,
            channel=record.channel,
            user_identity=record.user_identity,
        )

    async def _answer(
        self,
        record: SessionRecord,
        wait: float | None,
        participant: ParticipantDetails | None,
        *,
        replayed: bool,
    ) -> StartedSession:
        if wait is not None and not record.is_over:
            record = await self._wait_for_agent(record, wait)
        return StartedSession(
            record=record,
            user_token=self._livekit.user_token(
                room=record.room_name, identity=record.user_identity, details=participant
            ),
            livekit_url=self._settings.client_livekit_url,
            expires_at=now() + timedelta(seconds=self._settings.token_ttl_seconds),
            replayed=replayed,
        )

    async def _wait_for_agent(self, record: SessionRecord, within: float) -> SessionRecord:
        """Bounded; when the agent does not come, the session is closed and its room deleted
        before the 504, so nothing is left behind."""
        seen = await self._arrivals.wait(record, within=within)
        if seen.agent_joined_at is not None:
            return seen
        if seen.is_over:
            await self._store.release_idempotency_key(record.id)
            raise AgentTimeout(
                f"the session ended ({seen.end_reason}) before an agent joined; nothing is left"
            )
        await self._close(
            seen,
            status=SessionStatus.FAILED,
            reason=EndReason.AGENT_NEVER_JOINED,
            error=f"no agent joined within {within:g} s of a waitForAgent start",
            release_idempotency_key=True,
        )
        raise AgentTimeout(
            f"no agent joined within {within:g} s; the session was ended and its room deleted"
        )

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
            status=SessionStatus.FAILED if reason in FAILURE_REASONS else SessionStatus.ENDED,
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
        # the reason (and the ending key) we recorded before deleting are the true ones.
        reason = record.end_reason or EndReason.ROOM_FINISHED
        status = SessionStatus.FAILED if reason in FAILURE_REASONS else SessionStatus.ENDED
        return await self._close(
            record,
            status=status,
            reason=reason,
            error=record.error,
            delete_room=False,
            actor_key_id=record.ending_key_id,
        )

    async def participant_joined(self, room_name: str, *, who: str, at: datetime) -> None:
        record = await self._store.get_by_room(room_name)
        if record is not None:
            await self._store.record_join(record.id, who=who, at=at)
            if who == "agent":
                self._arrivals.arrived(record.id)

    async def claim_job(self, room_name: str, claim: JobClaim) -> SessionRecord:
        """A worker's job asks to join: yes for the first job of the current dispatch of a live
        session, JobNotWanted otherwise (a late job, a replaced dispatch, an ended session)."""
        record = await self.get(room_name)
        if record.id != claim.session_id:
            raise JobNotWanted("the job's session is not this room's session")
        claimed = await self._store.claim_job(claim)
        bound = log.bind(session_id=record.id, room=room_name, agent_id=record.agent_id)
        if claimed is None:
            bound.warning("job_turned_away", job_id=claim.job_id, attempt=claim.attempt)
            raise JobNotWanted("this session is over or another job already has it")
        bound.info("job_claimed", job_id=claim.job_id, worker_id=claim.worker_id)
        return claimed

    async def first_agent_audio(self, room_name: str, at: datetime) -> None:
        record = await self.get(room_name)
        await self._store.record_first_agent_audio(record.id, at)

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
        release_idempotency_key: bool = False,
    ) -> SessionRecord:
        """Every way a session ends comes through here: room first, then the record, then the
        session.ended event, so a failure to delete leaves the session live for a retry."""
        if record.is_over:
            return record
        bound = log.bind(session_id=record.id, room=record.room_name, agent_id=record.agent_id)
        await self.stamps.settle(record.id)
        room_existed = False
        if delete_room and not record.is_chat:  # a chat session has no room to delete
            await self._store.mark_ending(
                record.id, reason=reason, error=error, key_id=actor_key_id
            )
            try:
                room_existed = await self._livekit.delete_room(record.room_name)
            except LiveKitUnavailable:
                await self._store.mark_ending(record.id, reason=None, error=None)
                raise
        closed, changed = await self._store.finish(
            record.id,
            status=status,
            reason=reason,
            error=error,
            # A start that never completed (its gateway died half-way) answered no client: a
            # retry with its Idempotency-Key must start afresh rather than get this session.
            release_idempotency_key=release_idempotency_key or record.start_in_flight,
        )
        if changed:
            SESSIONS_ENDED.labels(closed.agent_id, closed.channel, status.value, reason).inc()
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

    async def _give_up(self, record: SessionRecord, reason: str, error: str) -> None:
        """The dispatch watch's last step: the room goes, the session fails with the reason."""
        await self._close(record, status=SessionStatus.FAILED, reason=reason, error=error)

    async def _fail_start(
        self,
        record: SessionRecord,
        reason: EndReason,
        exc: LiveKitUnavailable,
        bound: Any,
        room_created_at: datetime | None,
    ) -> None:
        """The start's only update: the row opened `active` says failed and never started."""
        audit = None
        if self._audit is not None:
            audit = SessionAudit.ended_entry(
                record, status=SessionStatus.FAILED.value, reason=reason.value
            )
        failed, _ = await self._store.fail_start(
            record.id,
            reason=reason,
            error=exc.message,
            room_created_at=room_created_at,
            audit=audit,
        )
        SESSIONS_ENDED.labels(failed.agent_id, failed.channel, "failed", reason.value).inc()
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


def _check_config_size(overrides: dict[str, Any] | None) -> None:
    if overrides is not None:
        size = len(json.dumps(overrides).encode())
        if size > MAX_AGENT_CONFIG_BYTES:
            raise PayloadTooLarge(f"agentConfig is over {MAX_AGENT_CONFIG_BYTES} bytes")
