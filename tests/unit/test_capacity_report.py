"""The worker's capacity reports reach a real in-process gateway app: what /start's pre-flight and
/readyz read, and a drain that counts at once."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from livekit import api
from pydantic import SecretStr

from agent_worker.capacity_report import CapacityReporter
from agent_worker.config import WorkerSettings
from agent_worker.gateway_client import worker_token
from voice_gateway.app import create_app
from voice_gateway.config import GatewaySettings
from voice_gateway.services.capacity import Capacity
from voice_gateway.state import CAPACITY
from voice_gateway.store.models import WorkerReport

pytestmark = pytest.mark.unit

SECRET = secrets.token_urlsafe(32)


class FakeServer:
    """What the reporter reads of livekit-agents' AgentServer."""

    def __init__(self) -> None:
        self.active_jobs: list[Any] = []


@pytest_asyncio.fixture(loop_scope="session")
async def gateway(tmp_path: Path) -> AsyncIterator[TestServer]:
    settings = GatewaySettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
        livekit_api_secret=SecretStr(SECRET),
        reaper_enabled=False,
    )
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def worker_settings(gateway: TestServer) -> WorkerSettings:
    return WorkerSettings(
        gateway_url=str(gateway.make_url("/")),
        livekit_api_secret=SecretStr(SECRET),
        max_sessions=3,
        report_interval_seconds=0.2,
    )


async def capacity_of(gateway: TestServer) -> Capacity:
    app: web.Application = gateway.app  # type: ignore[assignment]
    return await app[CAPACITY].current()


async def eventually(gateway: TestServer, free: int) -> Capacity:
    for _ in range(100):
        capacity = await capacity_of(gateway)
        if capacity.free_slots == free:
            return capacity
        await asyncio.sleep(0.05)
    raise AssertionError(f"free slots stayed {capacity.free_slots}, expected {free}")


async def test_reports_follow_the_session_count_and_a_drain_counts_at_once(
    gateway: TestServer,
) -> None:
    server = FakeServer()
    reporter = CapacityReporter(worker_settings(gateway), server)
    try:
        assert (await capacity_of(gateway)).describe().startswith("no agent worker")
        reporter.registered("AW_one")
        await eventually(gateway, 3)
        server.active_jobs.append(object())
        await eventually(gateway, 2)
        await reporter.draining()
        capacity = await capacity_of(gateway)  # no waiting: the drain was reported before it ran
        assert (capacity.free_slots, capacity.draining) == (0, 1)
        assert "1 draining" in capacity.describe()
    finally:
        await reporter.aclose()


async def test_only_a_worker_token_may_report(gateway: TestServer) -> None:
    body = {"agentName": "voice-agent", "liveSessions": 0, "maxSessions": 5, "draining": False}
    settings = worker_settings(gateway)
    tokens = {
        "room token": worker_token(settings, api.VideoGrants(room="r1", room_admin=True)),
        "wrong secret": api.AccessToken("devkey", "x" * 40)
        .with_identity("agent-worker")
        .with_grants(api.VideoGrants(agent=True))
        .to_jwt(),
    }
    async with aiohttp.ClientSession() as http:
        for what, token in tokens.items():
            async with http.post(
                gateway.make_url("/internal/v1/workers/AW_x/report"),
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                assert resp.status == 401, what
    assert (await capacity_of(gateway)).free_slots == 0


def test_capacity_counts_free_slots_of_workers_that_are_not_draining() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def report(wid: str, live: int, most: int, draining: bool = False) -> WorkerReport:
        return WorkerReport(
            worker_id=wid,
            agent_name="voice-agent",
            live_sessions=live,
            max_sessions=most,
            draining=draining,
            last_seen_at=at - timedelta(seconds=1),
        )

    capacity = Capacity(
        "voice-agent",
        (report("a", 1, 4), report("b", 5, 4), report("c", 0, 4, draining=True)),
        6.0,
    )
    assert (capacity.free_slots, capacity.full, capacity.draining) == (3, 1, 1)
    assert capacity.describe() == "ok"
