"""What a user sees when parts fail or restart: no half-made sessions, no rooms left behind."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from livekit import api

from devstack.stack import Stack
from tests.e2e.conftest import Gateway, room_names

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack_without_livekit(tmp_path: Path) -> Iterator[Stack]:
    """A gateway whose LiveKit was started and then stopped, as in an outage."""
    s = Stack(
        api_key=f"vgw_sk_{secrets.token_urlsafe(32)}",
        log_dir=tmp_path,
        # No worker runs here; what is tested is LiveKit being down, not agent capacity.
        extra_gateway_env={"VOICEGW_AGENT_CAPACITY_CHECK": "false"},
        phone=False,
    )
    s.livekit.start()
    s.start_gateway()
    s.livekit.stop()
    try:
        yield s
    finally:
        s.stop()


async def test_livekit_down_answers_503_and_leaves_no_starting_session(
    http: aiohttp.ClientSession, stack_without_livekit: Stack
) -> None:
    status, payload, _ = await Gateway(http, stack_without_livekit).post(
        "/v1/sessions/start", {"agentId": "demo"}
    )
    assert status == 503, payload
    assert payload["error"]["code"] == "livekit_unavailable"
    db = (stack_without_livekit.database_url or "").removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT status, end_reason FROM sessions").fetchall()
    assert rows == [("failed", "livekit_unavailable")]

    async with http.get(stack_without_livekit.gateway_url + "/readyz") as resp:
        body = await resp.json()
    assert resp.status == 503 and body["checks"]["livekit"] != "ok"


async def test_end_works_after_the_gateway_restarts(
    gateway: Gateway, stack: Stack, lkapi: api.LiveKitAPI
) -> None:
    session = await gateway.start(agentId="demo")
    assert session["roomName"] in await room_names(lkapi)
    stack.stop_gateway()
    stack.start_gateway()
    status, ended = await gateway.end(session["roomName"])
    assert status == 200, ended
    assert ended["status"] == "ended"
    assert session["roomName"] not in await room_names(lkapi)


async def test_readyz_is_ready_when_livekit_and_store_answer(
    http: aiohttp.ClientSession, stack: Stack
) -> None:
    async with http.get(stack.gateway_url + "/readyz") as resp:
        body = await resp.json()
    assert resp.status == 200, body
    assert body["status"] == "ready"
    assert body["checks"] == {"store": "ok", "livekit": "ok", "agents": "ok"}
    assert body["agents"]["workers"] >= 1 and body["agents"]["freeSlots"] >= 1
