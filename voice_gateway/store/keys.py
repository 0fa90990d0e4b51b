"""API keys at rest: only the SHA-256 of each value, plus what is safe to show."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update

from voice_gateway.store.database import Database, now, utc
from voice_gateway.store.models import ApiKeyRecord
from voice_gateway.store.tables import api_keys


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
                )
            )
            row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).one()
        return _to_record(row)

    async def get_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        async with self._db.connect() as conn:
            row = (
                await conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash))
            ).one_or_none()
        return _to_record(row) if row else None

    async def touch(self, key_id: str) -> None:
        async with self._db.connect() as conn:
            await conn.execute(
                update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now())
            )


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
    )
