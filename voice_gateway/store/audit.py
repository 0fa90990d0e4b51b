"""The audit trail: who did what to which key or session. Key ids only, never a key or its hash."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Row, and_, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from voice_gateway.store.database import Database, now, utc
from voice_gateway.store.tables import audit_events


class AuditEvent(enum.StrEnum):
    """Every event the trail records; the audit API's `event` filter and answers use this list."""

    KEY_CREATED = "key.created"
    KEY_REVOKED = "key.revoked"
    KEY_ROTATED = "key.rotated"
    SESSION_STARTED = "session.started"
    SESSION_ENDED = "session.ended"
    SESSION_TRANSFERRED = "session.transferred"
    CALL_PLACED = "call.placed"
    PHONE_NUMBER_CREATED = "phone_number.created"
    PHONE_NUMBER_DELETED = "phone_number.deleted"
    OUTBOUND_TRUNK_CREATED = "outbound_trunk.created"
    OUTBOUND_TRUNK_DELETED = "outbound_trunk.deleted"


KEY_CREATED = AuditEvent.KEY_CREATED
KEY_REVOKED = AuditEvent.KEY_REVOKED
KEY_ROTATED = AuditEvent.KEY_ROTATED
SESSION_STARTED = AuditEvent.SESSION_STARTED
SESSION_ENDED = AuditEvent.SESSION_ENDED


@dataclass(frozen=True, slots=True)
class AuditEntry:
    event: str
    key_id: str | None
    actor_key_id: str | None = None
    session_id: str | None = None
    request_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    occurred_at: datetime
    event: str
    key_id: str | None
    actor_key_id: str | None
    session_id: str | None
    request_id: str | None
    details: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class AuditQuery:
    events: tuple[str, ...] = ()
    key_id: str | None = None
    actor_key_id: str | None = None
    session_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: tuple[datetime, int] | None = None
    limit: int = 50


async def write_audit(conn: AsyncConnection, entry: AuditEntry) -> None:
    """Inside the caller's transaction, so a key change and its audit row commit together."""
    await conn.execute(audit_insert(entry))


def audit_insert(entry: AuditEntry) -> Insert:
    """The audit row's INSERT, for a transaction run as synchronous code or awaited."""
    return insert(audit_events).values(
        occurred_at=now(),
        event=entry.event,
        key_id=entry.key_id,
        actor_key_id=entry.actor_key_id,
        session_id=entry.session_id,
        request_id=entry.request_id,
        details=entry.details or None,
    )


class AuditStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, entry: AuditEntry) -> None:
        async with self._db.connect() as conn:
            await write_audit(conn, entry)

    async def query(self, q: AuditQuery) -> list[AuditRecord]:
        """Newest first, keyset-paginated on (occurred_at, id) like the sessions list."""
        t = audit_events
        stmt = select(t)
        if q.events:
            stmt = stmt.where(t.c.event.in_(list(q.events)))
        for column, value in (
            (t.c.key_id, q.key_id),
            (t.c.actor_key_id, q.actor_key_id),
            (t.c.session_id, q.session_id),
        ):
            if value:
                stmt = stmt.where(column == value)
        if q.since:
            stmt = stmt.where(t.c.occurred_at >= q.since)
        if q.until:
            stmt = stmt.where(t.c.occurred_at < q.until)
        if q.after is not None:
            at, row_id = q.after
            stmt = stmt.where(
                or_(t.c.occurred_at < at, and_(t.c.occurred_at == at, t.c.id < row_id))
            )
        stmt = stmt.order_by(t.c.occurred_at.desc(), t.c.id.desc()).limit(q.limit)
        async with self._db.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_to_record(r) for r in rows]


def _to_record(row: Row[Any]) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        occurred_at=utc(row.occurred_at) or now(),
        event=row.event,
        key_id=row.key_id,
        actor_key_id=row.actor_key_id,
        session_id=row.session_id,
        request_id=row.request_id,
        details=row.details,
    )
