"""Per-key limits kept in the database, so every gateway replica sees the same counts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from voice_gateway.store.database import Database, now
from voice_gateway.store.models import LIVE_STATUSES
from voice_gateway.store.tables import api_keys, rate_limit_counters, sessions


class LiveCapReached(Exception):
    pass


class RateCounterStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def hit(self, key_id: str, bucket: str, window_start: int) -> int:
        """Counts one request in the window and answers the window's count, this one included.

        One upsert: atomic on PostgreSQL (the conflicting row is locked) and on SQLite (one writer).
        """
        async with self._db.connect() as conn:
            stmt = _insert(conn, key_id=key_id, bucket=bucket, window_start=window_start, hits=1)
            upsert = stmt.on_conflict_do_update(
                index_elements=["key_id", "bucket", "window_start"],
                set_={"hits": rate_limit_counters.c.hits + 1},
            ).returning(rate_limit_counters.c.hits)
            hits = int((await conn.execute(upsert)).scalar_one())
            await conn.execute(
                delete(rate_limit_counters).where(
                    rate_limit_counters.c.key_id == key_id,
                    rate_limit_counters.c.bucket == bucket,
                    rate_limit_counters.c.window_start < window_start,
                )
            )
        return hits


async def hold_live_slot(conn: AsyncConnection, key_id: str, cap: int) -> None:
    """Call inside the transaction that inserts the session row.

    The UPDATE comes first on purpose: it takes the key's row lock on PostgreSQL (the write lock on
    SQLite) before counting, so two replicas starting sessions for one key take turns and the cap
    holds exactly.
    """
    await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now()))
    live = (
        await conn.execute(
            select(func.count())
            .select_from(sessions)
            .where(sessions.c.api_key_id == key_id, sessions.c.status.in_(LIVE_STATUSES))
        )
    ).scalar_one()
    if live >= cap:
        raise LiveCapReached()


def _insert(conn: AsyncConnection, **values: Any) -> postgresql.Insert | sqlite.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(rate_limit_counters).values(**values)
    return sqlite.insert(rate_limit_counters).values(**values)
