from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.unit.fakes import FakeLiveKit
from voice_gateway.catalogue import AgentCatalogue
from voice_gateway.config import DEFAULT_CATALOGUE, GatewaySettings
from voice_gateway.services.keys import Principal
from voice_gateway.services.sessions import SessionService
from voice_gateway.store.database import Database
from voice_gateway.store.sessions import SessionStore


@pytest_asyncio.fixture(loop_scope="session")
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'unit.db'}")
    await database.migrate()
    yield database
    await database.close()


@pytest_asyncio.fixture(loop_scope="session")
async def livekit() -> FakeLiveKit:
    return FakeLiveKit()


@pytest_asyncio.fixture(loop_scope="session")
async def service(db: Database, livekit: FakeLiveKit) -> SessionService:
    return SessionService(
        settings=GatewaySettings(),
        catalogue=AgentCatalogue.load(DEFAULT_CATALOGUE),
        store=SessionStore(db),
        livekit=livekit,
    )


OWNER = Principal(
    key_id="key_test",
    kind="secret",
    scopes=frozenset({"sessions:write"}),
    agent_ids=frozenset(),
    allowed_origins=frozenset(),
)
