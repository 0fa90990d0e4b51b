"""Session rows: written before LiveKit is called, completed after."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any, NotRequired, TypedDict, Unpack

from sqlalchemy import Connection, Insert, Row, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from voice_gateway.store.audit import AuditEntry, audit_insert, write_audit
from voice_gateway.store.database import Database, now, utc
from voice_gateway.store.limits import (
    RateLimitReached,
    RateWindow,
    count_hit_sync,
    hold_live_slot_sync,
)
from voice_gateway.store.models import (
    DISPATCHED_STATUSES,
    LIVE_STATUSES,
    Channel,
    PhoneLeg,
    SessionRecord,
    SessionStatus,
    StartStamps,
    TranscriptSegment,
)
from voice_gateway.store.outbox import drop_undelivered
from voice_gateway.store.tables import outbound_events, sessions, transcript_segments


@dataclass(frozen=True, slots=True)
class SessionQuery:
    statuses: tuple[str, ...] = ()
    agent_id: str | None = None
    user_identity: str | None = None
    channel: str | None = None
    api_key_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: tuple[datetime, str] | None = None
    limit: int | None = 50


# The outgoing event a start queues (services/outgoing_webhooks.py names the same string).
STARTED_EVENT = "session.started"


@dataclass(frozen=True, slots=True)
class StartWrite:
    """What a start commits in the same transaction as its session row."""

    live_cap: int | None = None
    rate: RateWindow | None = None
    audit: AuditEntry | None = None
    events: list[dict[str, object]] = field(default_factory=list)


class IdempotencyKeyTaken(Exception):
    """Another start with this API key already holds this Idempotency-Key."""


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    error: str


@dataclass(frozen=True, slots=True)
class JobClaim:
    """A worker's claim on a session for one of its jobs: the one agent the room gets."""

    session_id: str
    attempt: int
    job_id: str
    worker_id: str
    at: datetime


def insert_segment(session_id: str, seg: TranscriptSegment) -> Insert:
    """The row of one transcript segment (a spoken line, a typed message or a reply)."""
    return insert(transcript_segments).values(
        session_id=session_id,
        segment_id=seg.segment_id,
        speaker=seg.speaker,
        text=seg.text,
        spoken_at=seg.spoken_at,
        modality=seg.modality,
    )


def _phone_columns(phone: PhoneLeg | None) -> dict[str, Any]:
    if phone is None:
        return {}
    return {
        "call_direction": phone.direction,
        "caller_number": phone.caller_number,
        "called_number": phone.called_number,
        "sip_call_id": phone.sip_call_id,
    }


class SessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        live_cap: int | None = None,
        refused: Refusal | None = None,
        **row: Unpack[NewRow],
    ) -> SessionRecord:
        """A `starting` row, completed later by mark_started (or a `refused` start, written
        failed at once: no room, never live, no key held). With `live_cap`, raises
        LiveCapReached when the key already has that many live sessions; the count and the
        insert share one transaction (see store/limits.py). Raises IdempotencyKeyTaken when the
        key's Idempotency-Key is held by another session."""
        values = _new_row(row)
        if refused is not None:
            live_cap = None
            values.update(
                status=SessionStatus.FAILED.value,
                end_reason=refused.reason,
                error=refused.error,
                ended_at=values["created_at"],
                idempotency_key=None,
            )
        return await self._insert(values, StartWrite(live_cap=live_cap))

    async def open(
        self, write: StartWrite, *, ringing: bool = False, **row: Unpack[NewRow]
    ) -> SessionRecord:
        """A start's one write, before LiveKit is called: the row inserted `active` (its final
        state; only a failed LiveKit call changes it, see fail_start), with the key's rate-limit
        hit, its live-session cap check, the audit row and the outgoing session.started events,
        all in one transaction. Raises RateLimitReached, LiveCapReached or IdempotencyKeyTaken
        (nothing is then written). `row` takes create()'s row arguments."""
        values = _new_row(row)
        if ringing:  # a phone session: active (and announced) once its call is answered
            values.update(status=SessionStatus.RINGING.value)
        else:
            values.update(status=SessionStatus.ACTIVE.value, started_at=values["created_at"])
        return await self._insert(values, write)

    async def _insert(self, values: dict[str, Any], write: StartWrite) -> SessionRecord:
        key_id = values["api_key_id"]

        def transaction(conn: Connection) -> None:
            if write.rate is not None and count_hit_sync(conn, write.rate) > write.rate.allowance:
                raise RateLimitReached()
            if write.live_cap is not None and key_id is not None:
                hold_live_slot_sync(conn, key_id, write.live_cap)
            conn.execute(insert(sessions).values(**values))
            if write.audit is not None:
                conn.execute(audit_insert(write.audit))
            if write.events:
                conn.execute(insert(outbound_events), write.events)

        try:
            await self._db.write_once(transaction)
        except IntegrityError:
            if values["idempotency_key"] is None:
                raise
            raise IdempotencyKeyTaken() from None
        blank: dict[str, Any] = {c.name: None for c in sessions.c}
        return _to_record(SimpleNamespace(**(blank | _defaults(values))))

    async def fail_start(
        self,
        session_id: str,
        *,
        reason: str,
        error: str,
        room_created_at: datetime | None,
        audit: AuditEntry | None = None,
    ) -> tuple[SessionRecord, bool]:
        """The one update a start makes, when a LiveKit call failed after open(): the row says
        failed and never started, lets go of its Idempotency-Key, and its undelivered
        session.started events are taken back, in one transaction with the audit row."""
        at = now()
        async with self._db.writing() as conn:
            result = await conn.execute(
                update(sessions)
                .where(sessions.c.id == session_id, sessions.c.status.in_(LIVE_STATUSES))
                .values(
                    status=SessionStatus.FAILED.value,
                    end_reason=reason,
                    error=error,
                    ended_at=at,
                    started_at=None,
                    idempotency_key=None,
                    room_created_at=room_created_at,
                )
            )
            changed = result.rowcount == 1
            if changed:
                await drop_undelivered(conn, session_id, STARTED_EVENT)
                if audit is not None:
                    await write_audit(conn, audit)
            row = (await conn.execute(select(sessions).where(sessions.c.id == session_id))).one()
        return _to_record(row), changed

    async def write_stamps(self, stamps: Sequence[tuple[str, StartStamps]]) -> None:
        """Setup-timeline stamps of many starts in one transaction (StampWriter batches them off
        the request path); a stamp already written is kept."""
        if not stamps:
            return
        stmt = (
            update(sessions)
            .where(sessions.c.id == bindparam("sid"), sessions.c.dispatched_at.is_(None))
            .values(room_created_at=bindparam("rc"), dispatched_at=bindparam("dp"))
        )
        rows = [{"sid": sid, "rc": s.room_created_at, "dp": s.dispatched_at} for sid, s in stamps]
        await self._db.write_once(lambda conn: conn.execute(stmt, rows))

    async def get_by_idempotency_key(self, api_key_id: str, key: str) -> SessionRecord | None:
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    select(sessions).where(
                        sessions.c.api_key_id == api_key_id, sessions.c.idempotency_key == key
                    )
                )
            ).one_or_none()
        return _to_record(row) if row else None

    async def release_idempotency_key(self, session_id: str) -> None:
        async with self._db.connect() as conn:
            await conn.execute(
                update(sessions).where(sessions.c.id == session_id).values(idempotency_key=None)
            )

    async def get_by_id(self, session_id: str) -> SessionRecord | None:
        async with self._db.connect() as conn:
            row = (
                await conn.execute(select(sessions).where(sessions.c.id == session_id))
            ).one_or_none()
        return _to_record(row) if row else None

    async def get_by_room(self, room_name: str) -> SessionRecord | None:
        async with self._db.connect() as conn:
            row = (
                await conn.execute(select(sessions).where(sessions.c.room_name == room_name))
            ).one_or_none()
        return _to_record(row) if row else None

    async def mark_started(
        self, session_id: str, stamps: StartStamps | None = None
    ) -> SessionRecord:
        """The start's completing write, with the setup stamps it collected on the way: a web
        session is active from here, a phone session rings until its call is answered, and a
        chat session (no room, no stamps) is active at once."""
        values: dict[str, Any] = {}
        if stamps is not None:
            values.update(
                room_created_at=stamps.room_created_at, dispatched_at=stamps.dispatched_at
            )
        if stamps is not None and stamps.ringing:
            values["status"] = SessionStatus.RINGING.value
        else:
            values.update(status=SessionStatus.ACTIVE.value, started_at=now())
        record, _ = await self._transition(
            session_id, from_status=(SessionStatus.STARTING,), values=values
        )
        return record

    async def mark_answered(self, session_id: str) -> tuple[SessionRecord, bool]:
        """A ringing phone session's call was answered: active from now on. The flag says
        whether this call made it so (the worker and the dialer may both report it)."""
        return await self._transition(
            session_id,
            from_status=(SessionStatus.RINGING,),
            values={"status": SessionStatus.ACTIVE.value, "started_at": now()},
        )

    async def set_sip_call_id(self, session_id: str, sip_call_id: str) -> None:
        async with self._db.connect() as conn:
            await conn.execute(
                update(sessions).where(sessions.c.id == session_id).values(sip_call_id=sip_call_id)
            )

    async def finish(
        self,
        session_id: str,
        *,
        status: SessionStatus,
        reason: str,
        error: str | None = None,
        release_idempotency_key: bool = False,
    ) -> tuple[SessionRecord, bool]:
        """Ends a live session once; one already over keeps its first end (first writer wins).
        The flag says whether this call was the one that ended it. A start that answers an error
        releases its Idempotency-Key, so the client's retry starts afresh."""
        values: dict[str, Any] = {
            "status": status.value,
            "end_reason": reason,
            "error": error,
            "ended_at": now(),
        }
        if release_idempotency_key:
            values["idempotency_key"] = None
        return await self._transition(session_id, from_status=LIVE_STATUSES, values=values)

    async def claim_job(self, claim: JobClaim) -> SessionRecord | None:
        """The worker's job takes the session: at most one job per dispatch attempt, none for a
        session that is over or for an attempt the dispatch watch has replaced. Answers the
        session when the claim is (or already was) this job's, None when it is refused."""
        async with self._db.connect() as conn:
            await conn.execute(
                update(sessions)
                .where(
                    sessions.c.id == claim.session_id,
                    sessions.c.status.in_(LIVE_STATUSES),
                    sessions.c.dispatch_attempts == claim.attempt,
                    sessions.c.agent_job_id.is_(None),
                )
                .values(
                    agent_job_id=claim.job_id,
                    agent_worker_id=claim.worker_id,
                    job_assigned_at=claim.at,
                )
            )
            row = (
                await conn.execute(select(sessions).where(sessions.c.id == claim.session_id))
            ).one_or_none()
        if row is None:
            return None
        record = _to_record(row)
        mine = record.agent_job_id == claim.job_id and record.dispatch_attempts == claim.attempt
        return record if mine and not record.is_over else None

    async def begin_redispatch(self, session_id: str) -> SessionRecord | None:
        """Moves a session whose first dispatch was not taken to its second and last attempt.
        Only one caller wins (the request's own watch or the reaper's pass, on any replica); the
        first attempt's job, should it still come, can no longer claim the session."""
        async with self._db.connect() as conn:
            result = await conn.execute(
                update(sessions)
                .where(
                    sessions.c.id == session_id,
                    sessions.c.status.in_(DISPATCHED_STATUSES),
                    sessions.c.dispatch_attempts == 1,
                    sessions.c.agent_joined_at.is_(None),
                )
                .values(
                    dispatch_attempts=2,
                    redispatched_at=now(),
                    agent_job_id=None,
                    agent_worker_id=None,
                    job_assigned_at=None,
                )
            )
            row = (await conn.execute(select(sessions).where(sessions.c.id == session_id))).one()
        return _to_record(row) if result.rowcount == 1 else None

    async def record_first_agent_audio(self, session_id: str, at: datetime) -> None:
        async with self._db.connect() as conn:
            await conn.execute(
                update(sessions)
                .where(sessions.c.id == session_id, sessions.c.first_agent_audio_at.is_(None))
                .values(first_agent_audio_at=at)
            )

    async def mark_ending(
        self,
        session_id: str,
        *,
        reason: str | None,
        error: str | None,
        key_id: str | None = None,
    ) -> None:
        """Notes why (and by which key) a live session is being ended before its room is
        deleted, or clears it when the deletion failed, so the room_finished webhook that may
        close the session first keeps that reason and audits that key."""
        async with self._db.connect() as conn:
            await conn.execute(
                update(sessions)
                .where(
                    sessions.c.id == session_id,
                    sessions.c.status.in_(LIVE_STATUSES),
                )
                .values(end_reason=reason, error=error, ending_key_id=key_id)
            )

    async def record_join(self, session_id: str, *, who: str, at: datetime) -> None:
        column = {"user": sessions.c.user_joined_at, "agent": sessions.c.agent_joined_at}[who]
        async with self._db.connect() as conn:
            await conn.execute(
                update(sessions)
                .where(sessions.c.id == session_id, column.is_(None))
                .values({column: at})
            )

    async def add_segments(self, session_id: str, segments: Sequence[TranscriptSegment]) -> int:
        """Idempotent per segment id, so a worker may resend after a timeout without duplicates."""
        added = 0
        for seg in segments:
            try:
                async with self._db.connect() as conn:
                    await conn.execute(insert_segment(session_id, seg))
                added += 1
            except IntegrityError:
                continue
        return added

    async def transcript(self, session_id: str) -> list[TranscriptSegment]:
        async with self._db.connect() as conn:
            rows = (
                await conn.execute(
                    select(transcript_segments)
                    .where(transcript_segments.c.session_id == session_id)
                    .order_by(transcript_segments.c.spoken_at, transcript_segments.c.id)
                )
            ).all()
        return [
            TranscriptSegment(
                segment_id=r.segment_id,
                speaker=r.speaker,
                text=r.text,
                spoken_at=utc(r.spoken_at) or now(),
                modality=r.modality,
            )
            for r in rows
        ]

    async def query(self, q: SessionQuery) -> list[SessionRecord]:
        """Newest first, keyset-paginated on (created_at, id) so pages stay stable under inserts."""
        stmt = select(sessions)
        if q.statuses:
            stmt = stmt.where(sessions.c.status.in_(list(q.statuses)))
        if q.agent_id:
            stmt = stmt.where(sessions.c.agent_id == q.agent_id)
        if q.user_identity:
            stmt = stmt.where(sessions.c.user_identity == q.user_identity)
        if q.channel:
            stmt = stmt.where(sessions.c.channel == q.channel)
        if q.api_key_id:
            stmt = stmt.where(sessions.c.api_key_id == q.api_key_id)
        if q.since:
            stmt = stmt.where(sessions.c.created_at >= q.since)
        if q.until:
            stmt = stmt.where(sessions.c.created_at < q.until)
        if q.after is not None:
            created, sid = q.after
            stmt = stmt.where(
                or_(
                    sessions.c.created_at < created,
                    and_(sessions.c.created_at == created, sessions.c.id < sid),
                )
            )
        stmt = stmt.order_by(sessions.c.created_at.desc(), sessions.c.id.desc())
        if q.limit:
            stmt = stmt.limit(q.limit)
        async with self._db.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_to_record(r) for r in rows]

    async def live(self) -> list[SessionRecord]:
        """Sessions that may still hold a LiveKit room."""
        return await self.query(SessionQuery(statuses=LIVE_STATUSES, limit=None))

    async def live_counts(self) -> dict[tuple[str, str], int]:
        """Live sessions (starting, ringing or active) by (agent, channel): the
        voicegw_live_sessions gauge."""
        stmt = (
            select(sessions.c.agent_id, sessions.c.channel, func.count())
            .where(sessions.c.status.in_(LIVE_STATUSES))
            .group_by(sessions.c.agent_id, sessions.c.channel)
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {(r[0], r[1]): int(r[2]) for r in rows}

    async def _transition(
        self,
        session_id: str,
        *,
        from_status: tuple[SessionStatus, ...],
        values: dict[str, Any],
    ) -> tuple[SessionRecord, bool]:
        async with self._db.connect() as conn:
            result = await conn.execute(
                update(sessions)
                .where(
                    sessions.c.id == session_id,
                    sessions.c.status.in_([s.value for s in from_status]),
                )
                .values(**values)
            )
            row = (await conn.execute(select(sessions).where(sessions.c.id == session_id))).one()
        return _to_record(row), result.rowcount == 1


class NewRow(TypedDict):
    """A new session row as the start path names it."""

    session_id: str
    room_name: str
    agent_id: str
    user_identity: str
    api_key_id: str | None
    agent_config: dict[str, Any]
    max_duration_seconds: int
    channel: NotRequired[str]
    idempotency_key: NotRequired[str | None]
    request_fingerprint: NotRequired[str | None]
    phone: NotRequired[PhoneLeg | None]


def _new_row(row: NewRow) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": row["session_id"],
        "room_name": row["room_name"],
        "agent_id": row["agent_id"],
        "user_identity": row["user_identity"],
        "status": SessionStatus.STARTING.value,
        "api_key_id": row["api_key_id"],
        "agent_config": row["agent_config"],
        "max_duration_seconds": row["max_duration_seconds"],
        "created_at": now(),
        "channel": row.get("channel", Channel.WEB),
        "idempotency_key": row.get("idempotency_key"),
        "request_fingerprint": row.get("request_fingerprint"),
        **_phone_columns(row.get("phone")),
    }
    if values["channel"] == Channel.CHAT:  # a chat's idle clock runs from its creation
        values["last_activity_at"] = values["created_at"]
    return values


def _defaults(values: dict[str, Any]) -> dict[str, Any]:
    """The inserted values plus the server defaults, so an insert needs no read-back."""
    return {"dispatch_attempts": 1, **values}


def _to_record(row: Row[Any] | SimpleNamespace) -> SessionRecord:
    return SessionRecord(
        id=row.id,
        room_name=row.room_name,
        agent_id=row.agent_id,
        user_identity=row.user_identity,
        status=SessionStatus(row.status),
        end_reason=row.end_reason,
        error=row.error,
        api_key_id=row.api_key_id,
        agent_config=row.agent_config,
        max_duration_seconds=row.max_duration_seconds,
        created_at=utc(row.created_at) or now(),
        started_at=utc(row.started_at),
        ended_at=utc(row.ended_at),
        user_joined_at=utc(row.user_joined_at),
        agent_joined_at=utc(row.agent_joined_at),
        channel=row.channel,
        room_created_at=utc(row.room_created_at),
        dispatched_at=utc(row.dispatched_at),
        redispatched_at=utc(row.redispatched_at),
        job_assigned_at=utc(row.job_assigned_at),
        first_agent_audio_at=utc(row.first_agent_audio_at),
        dispatch_attempts=row.dispatch_attempts,
        agent_job_id=row.agent_job_id,
        agent_worker_id=row.agent_worker_id,
        idempotency_key=row.idempotency_key,
        request_fingerprint=row.request_fingerprint,
        last_activity_at=utc(row.last_activity_at),
        reply_started_at=utc(row.reply_started_at),
        ending_key_id=row.ending_key_id,
        phone=PhoneLeg(
            direction=row.call_direction,
            caller_number=row.caller_number or "",
            called_number=row.called_number or "",
            sip_call_id=row.sip_call_id,
        )
        if row.call_direction
        else None,
    )
