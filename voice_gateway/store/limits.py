"""Per-key limits kept in the database, so every gateway replica sees the same counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
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
        async with self._db.writing() as conn:
            return await count_hit(conn, RateWindow(key_id, bucket, window_start, 0))


@dataclass(frozen=True, slots=True)
class RateWindow:
    """One request's place in its key's fixed window, and how many the window allows."""

    key_id: str
    bucket: str
    window_start: int
    allowance: int


class RateLimitReached(Exception):
    pass


async def count_hit(conn: AsyncConnection, window: RateWindow) -> int:
    """Counts one request in its window inside the caller's transaction (a start's own, so a
    start costs no separate write for it) and answers the window's count, this one included.
    Older windows of the key are deleted on the way."""
    return await conn.run_sync(count_hit_sync, window)


def count_hit_sync(conn: Connection, window: RateWindow) -> int:
    """count_hit for a transaction run as one piece of synchronous code (Database.write_once)."""
    stmt = _insert(
        conn, key_id=window.key_id, bucket=window.bucket, window_start=window.window_start, hits=1
    )
    upsert = stmt.on_conflict_do_update(
        index_elements=["key_id", "bucket", "window_start"],
        set_={"hits": rate_limit_counters.c.hits + 1},
    ).returning(rate_limit_counters.c.hits)
    hits = int(conn.execute(upsert).scalar_one())
    if hits == 1:  # the window's first request: the only time an older window can be left
        conn.execute(
            delete(rate_limit_counters).where(
                rate_limit_counters.c.key_id == window.key_id,
                rate_limit_counters.c.bucket == window.bucket,
                rate_limit_counters.c.window_start < window.window_start,
            )
        )
    return hits


def hold_live_slot_sync(conn: Connection, key_id: str, cap: int) -> None:
    """Call inside the transaction that inserts the session row.

    The UPDATE comes first on purpose: it takes the key's row lock on PostgreSQL (the write lock on
    SQLite) before counting, so two replicas starting sessions for one key take turns and the cap
    holds exactly.
    """
    conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now()))
    live = conn.execute(
        select(func.count())
        .select_from(sessions)
        .where(sessions.c.api_key_id == key_id, sessions.c.status.in_(LIVE_STATUSES))
    ).scalar_one()
    if live >= cap:
        raise LiveCapReached()


def _insert(conn: Connection, **values: Any) -> postgresql.Insert | sqlite.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(rate_limit_counters).values(**values)
    return sqlite.insert(rate_limit_counters).values(**values)
