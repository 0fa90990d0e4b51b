"""The outbox of outgoing webhook events: enqueue in the request, claim and mark in the sender."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from voice_gateway.store.database import Database, now, utc
from voice_gateway.store.tables import outbound_events, sessions


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    id: str
    event_type: str
    session_id: str
    url: str
    created_at: datetime
    attempts: int


def outbox_rows(
    event_type: str, session_id: str, urls: list[str], *, delay_seconds: float = 0
) -> list[dict[str, object]]:
    """One row per receiving URL, ready for write_outbox."""
    at = now()
    return [
        {
            "id": f"evt_{secrets.token_hex(10)}",
            "event_type": event_type,
            "session_id": session_id,
            "url": url,
            "created_at": at,
            "deliver_after": at + timedelta(seconds=delay_seconds),
            "attempts": 0,
        }
        for url in urls
    ]


async def write_outbox(conn: AsyncConnection, rows: list[dict[str, object]]) -> None:
    """Inside the caller's transaction, so an event is queued exactly when its change commits."""
    if rows:
        await conn.execute(insert(outbound_events), rows)


async def drop_undelivered(conn: AsyncConnection, session_id: str, event_type: str) -> None:
    """A start that failed after its row committed takes back its session.started event."""
    await conn.execute(
        delete(outbound_events).where(
            outbound_events.c.session_id == session_id,
            outbound_events.c.event_type == event_type,
            outbound_events.c.delivered_at.is_(None),
        )
    )


class Outbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def enqueue(
        self, event_type: str, session_id: str, urls: list[str], *, delay_seconds: float = 0
    ) -> None:
        await self.write(outbox_rows(event_type, session_id, urls, delay_seconds=delay_seconds))

    async def write(self, rows: list[dict[str, object]]) -> None:
        if rows:
            async with self._db.connect() as conn:
                await write_outbox(conn, rows)

    async def unannounced(
        self, event_type: str, *, stamp: str, grace_seconds: float, horizon_seconds: float
    ) -> list[str]:
        """Sessions whose `stamp` column (started_at, ended_at) was set between `horizon_seconds`
        and `grace_seconds` ago but which have no `event_type` row: the gateway that changed them
        died, or lost its database, between the change and the enqueue."""
        at = now()
        column = sessions.c[stamp]
        query = select(sessions.c.id).where(
            column.is_not(None),
            sessions.c.started_at.is_not(None),
            column < at - timedelta(seconds=grace_seconds),
            column > at - timedelta(seconds=horizon_seconds),
            ~exists().where(
                outbound_events.c.session_id == sessions.c.id,
                outbound_events.c.event_type == event_type,
            ),
        )
        async with self._db.connect() as conn:
            return [r.id for r in (await conn.execute(query)).all()]

    async def claim_due(
        self, *, limit: int, lease_seconds: float, max_attempts: int
    ) -> list[OutboundEvent]:
        """Claims rows one by one with a conditional update, so two replicas never send one
        event at the same time; a crashed sender's lease simply runs out."""
        at = now()
        due = and_(
            outbound_events.c.delivered_at.is_(None),
            outbound_events.c.deliver_after <= at,
            outbound_events.c.attempts < max_attempts,
            or_(outbound_events.c.claimed_until.is_(None), outbound_events.c.claimed_until < at),
        )
        claimed: list[OutboundEvent] = []
        async with self._db.connect() as conn:
            rows = (
                await conn.execute(
                    select(outbound_events)
                    .where(due)
                    .order_by(outbound_events.c.deliver_after)
                    .limit(limit)
                )
            ).all()
            for r in rows:
                result = await conn.execute(
                    update(outbound_events)
                    .where(outbound_events.c.id == r.id, due)
                    .values(claimed_until=at + timedelta(seconds=lease_seconds))
                )
                if result.rowcount == 1:
                    claimed.append(
                        OutboundEvent(
                            id=r.id,
                            event_type=r.event_type,
                            session_id=r.session_id,
                            url=r.url,
                            created_at=utc(r.created_at) or at,
                            attempts=r.attempts,
                        )
                    )
        return claimed

    async def delivered(self, event_id: str) -> None:
        await self._set(event_id, delivered_at=now(), claimed_until=None)

    async def failed(self, event_id: str, *, attempts: int, retry_in: float, error: str) -> None:
        await self._set(
            event_id,
            attempts=attempts,
            last_error=error[:500],
            claimed_until=None,
            deliver_after=now() + timedelta(seconds=retry_in),
        )

    async def _set(self, event_id: str, **values: object) -> None:
        async with self._db.connect() as conn:
            await conn.execute(
                update(outbound_events).where(outbound_events.c.id == event_id).values(**values)
            )
