"""The audit trail: who did what to which key or session. Key ids only, never a key or its hash."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from voice_gateway.store.database import Database, now
from voice_gateway.store.tables import audit_events

KEY_CREATED = "key.created"
KEY_REVOKED = "key.revoked"
KEY_ROTATED = "key.rotated"
SESSION_STARTED = "session.started"
SESSION_ENDED = "session.ended"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    event: str
    key_id: str | None
    actor_key_id: str | None = None
    session_id: str | None = None
    request_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


async def write_audit(conn: AsyncConnection, entry: AuditEntry) -> None:
    """Inside the caller's transaction, so a key change and its audit row commit together."""
    await conn.execute(
        insert(audit_events).values(
            occurred_at=now(),
            event=entry.event,
            key_id=entry.key_id,
            actor_key_id=entry.actor_key_id,
            session_id=entry.session_id,
            request_id=entry.request_id,
            details=entry.details or None,
        )
    )


class AuditStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, entry: AuditEntry) -> None:
        async with self._db.connect() as conn:
            await write_audit(conn, entry)
