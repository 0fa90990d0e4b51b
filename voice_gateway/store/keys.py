"""API keys at rest: only the SHA-256 of each value, plus what is safe to show."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from voice_gateway.store.audit import AuditEntry, write_audit
from voice_gateway.store.database import Database, now, utc
from voice_gateway.store.models import ApiKeyRecord
from voice_gateway.store.tables import api_key_retired_hashes, api_keys


class KeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(
        self,
        *,
        key_id: str,
        prefix: str,
        key_hash: str,
        kind: str,
        name: str,
        scopes: Sequence[str],
        agent_ids: Sequence[str] = (),
        allowed_origins: Sequence[str] = (),
        expires_at: datetime | None = None,
        rate_limit_per_minute: int | None = None,
        rate_limit_window_seconds: int | None = None,
        max_concurrent_sessions: int | None = None,
        allow_browser: bool = False,
        audit: AuditEntry | None = None,
    ) -> ApiKeyRecord:
        async with self._db.connect() as conn:
            await conn.execute(
                insert(api_keys).values(
                    id=key_id,
                    prefix=prefix,
                    key_hash=key_hash,
                    kind=kind,
                    name=name,
                    scopes=list(scopes),
                    agent_ids=list(agent_ids),
                    allowed_origins=list(allowed_origins),
                    created_at=now(),
                    expires_at=expires_at,
                    rate_limit_per_minute=rate_limit_per_minute,
                    rate_limit_window_seconds=rate_limit_window_seconds,
                    max_concurrent_sessions=max_concurrent_sessions,
                    allow_browser=allow_browser,
                )
            )
            if audit is not None:
                await write_audit(conn, audit)
            row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).one()
        return _to_record(row)

    async def get_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        async with self._db.connect() as conn:
            row = (
                await conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash))
            ).one_or_none()
        return _to_record(row) if row else None

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        async with self._db.connect() as conn:
            return await _get(conn, key_id)

    async def list_all(self) -> list[ApiKeyRecord]:
        async with self._db.connect() as conn:
            rows = (
                await conn.execute(select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id))
            ).all()
        return [_to_record(r) for r in rows]

    async def list_publishable(self) -> list[ApiKeyRecord]:
        async with self._db.connect() as conn:
            rows = (
                await conn.execute(
                    select(api_keys).where(
                        api_keys.c.kind == "publishable", api_keys.c.revoked_at.is_(None)
                    )
                )
            ).all()
        return [_to_record(r) for r in rows]

    async def is_retired(self, key_hash: str) -> bool:
        async with self._db.connect() as conn:
            row = (
                await conn.execute(
                    select(api_key_retired_hashes.c.key_id).where(
                        api_key_retired_hashes.c.key_hash == key_hash
                    )
                )
            ).one_or_none()
        return row is not None

    async def touch(self, key_id: str, *, every_seconds: float = 60.0) -> None:
        """Records use at most once a minute per key: `last used` is for humans, and a write on
        every request would cost each request a disk sync."""
        at = now()
        async with self._db.connect() as conn:
            await conn.execute(
                update(api_keys)
                .where(
                    api_keys.c.id == key_id,
                    or_(
                        api_keys.c.last_used_at.is_(None),
                        api_keys.c.last_used_at < at - timedelta(seconds=every_seconds),
                    ),
                )
                .values(last_used_at=at)
            )

    async def revoke(self, key_id: str, *, audit: AuditEntry) -> ApiKeyRecord | None:
        """Idempotent: a key already revoked keeps its first revocation time and audit row."""
        async with self._db.connect() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now())
            )
            if result.rowcount:
                await write_audit(conn, audit)
            return await _get(conn, key_id)

    async def rotate(
        self, key_id: str, *, new_hash: str, new_prefix: str, audit: AuditEntry
    ) -> ApiKeyRecord | None:
        """Swaps the hash in one transaction: the old value stops at commit, the id stays.

        A revoked key is answered unchanged (revoked_at set) and not rotated.
        """
        async with self._db.connect() as conn:
            # The UPDATE first takes the row lock, so concurrent rotations of one key take turns.
            locked = await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(rotated_at=now())
            )
            current = await _get(conn, key_id)
            if current is None or not locked.rowcount:
                return current
            await conn.execute(
                insert(api_key_retired_hashes).values(
                    key_hash=current.key_hash, key_id=key_id, retired_at=now()
                )
            )
            await conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id)
                .values(key_hash=new_hash, prefix=new_prefix)
            )
            await write_audit(conn, audit)
            return await _get(conn, key_id)


async def _get(conn: AsyncConnection, key_id: str) -> ApiKeyRecord | None:
    row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).one_or_none()
    return _to_record(row) if row else None


def _to_record(row: Row[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        prefix=row.prefix,
        key_hash=row.key_hash,
        kind=row.kind,
        name=row.name,
        scopes=tuple(row.scopes),
        agent_ids=tuple(row.agent_ids),
        allowed_origins=tuple(row.allowed_origins),
        created_at=utc(row.created_at) or now(),
        last_used_at=utc(row.last_used_at),
        expires_at=utc(row.expires_at),
        revoked_at=utc(row.revoked_at),
        rate_limit_per_minute=row.rate_limit_per_minute,
        rate_limit_window_seconds=row.rate_limit_window_seconds,
        max_concurrent_sessions=row.max_concurrent_sessions,
        rotated_at=utc(row.rotated_at),
        allow_browser=bool(row.allow_browser),
    )
