"""The Alembic migrations build exactly the schema the code's tables describe."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from voice_gateway.store.database import Database
from voice_gateway.store.tables import metadata

pytestmark = pytest.mark.unit


async def test_migrated_schema_matches_the_tables(db: Database) -> None:
    def diff(conn: object) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))  # type: ignore[arg-type]

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_migrating_twice_is_harmless(db: Database) -> None:
    await db.migrate()
    await db.ping()
