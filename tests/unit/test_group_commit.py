"""Writes queued at one moment share a commit on SQLite, and each still fails on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from voice_gateway.store.database import Database
from voice_gateway.store.tables import rate_limit_counters

pytestmark = pytest.mark.unit


class Refused(Exception):
    """What a body raises to turn its write down (as a start over its key's cap does)."""


def put(key: str) -> Callable[[Connection], str]:
    def body(conn: Connection) -> str:
        conn.execute(
            insert(rate_limit_counters).values(key_id=key, bucket="b", window_start=1, hits=1)
        )
        return key

    return body


def refuse(conn: Connection) -> None:
    conn.execute(
        insert(rate_limit_counters).values(key_id="refused", bucket="b", window_start=1, hits=1)
    )
    raise Refused()


async def test_a_refusal_or_a_conflict_undoes_only_its_own_write(db: Database) -> None:
    results = await asyncio.gather(
        db.write_once(put("a")),
        db.write_once(put("a")),
        db.write_once(refuse),
        db.write_once(put("b")),
        return_exceptions=True,
    )
    # On SQLite the group runs in order, so the first "a" wins; on PostgreSQL the two run on
    # two connections at once and either may: exactly one of them is written.
    first, second = results[0], results[1]
    written = [r for r in (first, second) if r == "a"]
    conflicts = [r for r in (first, second) if isinstance(r, IntegrityError)]
    assert len(written) == 1 and len(conflicts) == 1, results
    if db.engine.dialect.name == "sqlite":
        assert first == "a"
    assert results[3] == "b"
    assert isinstance(results[2], Refused)
    async with db.connect() as conn:
        keys = (await conn.execute(select(rate_limit_counters.c.key_id))).scalars().all()
    assert sorted(keys) == ["a", "b"]  # the refused body's own insert was rolled back


async def test_many_writes_at_once_are_all_written(db: Database) -> None:
    keys = [f"k{i}" for i in range(150)]  # more than one group holds
    got = await asyncio.gather(*(db.write_once(put(k)) for k in keys))
    assert got == keys
    async with db.connect() as conn:
        stored = (await conn.execute(select(rate_limit_counters.c.key_id))).scalars().all()
    assert sorted(stored) == sorted(keys)
