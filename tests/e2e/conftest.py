"""Starts the real stack once per test session: livekit-server, the gateway and an agent worker."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from livekit import api

from devstack.stack import Stack
from devstack.voice_client import VoiceClient


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(
        api_key=f"vgw_sk_{secrets.token_urlsafe(32)}",
        log_dir=tmp_path_factory.mktemp("stack"),
    )
    try:
        s.start()
        yield s
    finally:
        s.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # A fresh connection per request: one test restarts the gateway under the same port.
    connector = aiohttp.TCPConnector(force_close=True)
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        yield session


@pytest_asyncio.fixture(loop_scope="session")
async def lkapi(stack: Stack) -> AsyncIterator[api.LiveKitAPI]:
    client = api.LiveKitAPI(
        stack.livekit.http_url, stack.livekit.api_key, stack.livekit.api_secret, failover=False
    )
    yield client
    await client.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def client() -> AsyncIterator[VoiceClient]:
    c = VoiceClient()
    yield c
    await c.leave()


class Gateway:
    """The public API as a client app calls it."""

    def __init__(self, http: aiohttp.ClientSession, stack: Stack) -> None:
        self.http = http
        self.stack = stack

    async def post(
        self, path: str, body: Any = None, *, key: str | None = "default", **kw: Any
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        headers = dict(kw.pop("headers", {}))
        if key == "default":
            key = self.stack.api_key
        if key is not None:
            headers["x-api-key"] = key
        if body is not None and "data" not in kw:
            kw["json"] = body
        async with self.http.post(self.stack.gateway_url + path, headers=headers, **kw) as resp:
            payload = await resp.json(content_type=None)
            return resp.status, payload, resp

    async def start(self, **body: Any) -> dict[str, Any]:
        status, payload, _ = await self.post("/v1/sessions/start", body)
        assert status == 201, payload
        return payload  # type: ignore[no-any-return]

    async def end(self, room_name: str) -> tuple[int, Any]:
        status, payload, _ = await self.post("/v1/sessions/end", {"roomName": room_name})
        return status, payload


@pytest_asyncio.fixture(loop_scope="session")
async def gateway(http: aiohttp.ClientSession, stack: Stack) -> Gateway:
    return Gateway(http, stack)


async def room_names(lkapi: api.LiveKitAPI) -> set[str]:
    rooms = await lkapi.room.list_rooms(api.ListRoomsRequest())
    return {r.name for r in rooms.rooms}


@pytest.fixture(scope="session")
def question_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spoken question, made the way a test of a voice product should: by a real speech engine."""
    d = tmp_path_factory.mktemp("speech")
    raw, wav = d / "raw.wav", d / "question.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), "what are your opening hours"],
        check=True,
    )
    subprocess.run(["sox", str(raw), "-r", "48000", "-c", "1", str(wav)], check=True)
    return wav


_MEASURED: dict[str, float] = {}


@pytest.fixture
def measure() -> dict[str, float]:
    """Numbers an end-to-end test saw, printed at the end (not asserted: machines vary)."""
    return _MEASURED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _MEASURED:
        terminalreporter.section("measured in the end-to-end tests")
        for name, value in _MEASURED.items():
            terminalreporter.write_line(f"{name}: {value:.0f}")
