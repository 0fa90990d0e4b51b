from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text

from devstack.postgres import PostgresServer
from tests.unit.fakes import FakeLiveKit
from voice_gateway.catalogue import AgentCatalogue
from voice_gateway.config import DEFAULT_CATALOGUE, GatewaySettings
from voice_gateway.services.keys import Principal
from voice_gateway.services.sessions import SessionService
from voice_gateway.store.database import Database
from voice_gateway.store.sessions import SessionStore
from voice_gateway.store.tables import metadata


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture(loop_scope="session", params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """The store's tests run on both dialects: one code path, two databases."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'unit.db'}"
    else:
        url = request.getfixturevalue("postgres").url
    database = Database(url)
    await database.migrate()
    yield database
    if not database.is_sqlite:
        async with database.engine.begin() as conn:  # a clean slate for the next test
            await conn.run_sync(metadata.drop_all)
            await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    await database.close()


@pytest_asyncio.fixture(loop_scope="session")
async def livekit() -> FakeLiveKit:
    return FakeLiveKit()


@pytest_asyncio.fixture(loop_scope="session")
async def service(db: Database, livekit: FakeLiveKit) -> AsyncIterator[SessionService]:
    s = SessionService(
        settings=GatewaySettings(),
        catalogue=AgentCatalogue.load(DEFAULT_CATALOGUE),
        store=SessionStore(db),
        livekit=livekit,
    )
    yield s
    await s.aclose()


OWNER = Principal(
    key_id="key_test",
    kind="secret",
    scopes=frozenset({"sessions:write"}),
    agent_ids=frozenset(),
    allowed_origins=frozenset(),
)
