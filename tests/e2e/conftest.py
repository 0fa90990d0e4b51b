"""Starts the real stack once per test session: livekit-server, the gateway and an agent worker."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from livekit import api

from devstack.postgres import PostgresServer
from devstack.stack import Stack
from devstack.voice_client import VoiceClient
from devstack.webhook_receiver import WebhookReceiver

WEBHOOK_SECRET = "whsec_" + secrets.token_urlsafe(24)
CHAT_IDLE_TIMEOUT_S = 30
# How long an agent may take to join a room it was dispatched to. Seconds when the machine is
# idle; under the load of a shared 2-core machine a job process took 30 s to connect (its
# process pool was being refilled while other engineers' tests ran).
AGENT_JOIN_S = 90


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `one_store` run on the SQLite stack only: what they prove does not depend on
    the store, and running them twice would only double CI time."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("stack") == "postgresql"
        (drop if on_postgres and item.get_closest_marker("one_store") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    # A test that restarts part of the shared stack runs after every other test on that stack.
    for item in [i for i in items if i.get_closest_marker("disruptive")]:
        param = _stack_param(item)
        last = max(i for i, other in enumerate(items) if _stack_param(other) == param)
        items.remove(item)
        items.insert(last, item)


def _stack_param(item: pytest.Item) -> object:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("stack") if callspec is not None else None


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    webhook_receiver: WebhookReceiver,
) -> Iterator[Stack]:
    """The whole stack, once on each store the gateway supports."""
    database_url = None
    if request.param == "postgresql":
        database_url = request.getfixturevalue("postgres").url
    s = Stack(
        api_key=f"vgw_sk_{secrets.token_urlsafe(32)}",
        log_dir=tmp_path_factory.mktemp(f"stack-{request.param}"),
        database_url=database_url,
        extra_gateway_env={
            "VOICEGW_WEBHOOK_URLS": json.dumps([webhook_receiver.url]),
            "VOICEGW_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "VOICEGW_WEBHOOK_ENDED_DELAY_SECONDS": "1",
            "VOICEGW_REAPER_INTERVAL_SECONDS": "1",
            "VOICEGW_ROOM_DEPARTURE_TIMEOUT_SECONDS": "2",
            # Room for a loaded machine, inside the contract fuzzer's 30 s request timeout; a test
            # of the timeout asks for less.
            "VOICEGW_WAIT_FOR_AGENT_TIMEOUT_SECONDS": "25",
            # A worker restarted on a loaded machine may take longer than the default 30 s to
            # report; the dispatch watch waits that long for one before it gives a session up.
            "VOICEGW_AGENT_JOIN_TIMEOUT_SECONDS": "60",
            # Chat sessions nobody writes in end this soon (the reaper's idle rule, tested);
            # long enough for a test's steps on a loaded machine.
            "VOICEGW_CHAT_IDLE_TIMEOUT_SECONDS": str(CHAT_IDLE_TIMEOUT_S),
            "VOICEGW_PHONE_RECONCILE_INTERVAL_SECONDS": "1",
            "VOICEGW_PHONE_RINGING_TIMEOUT_SECONDS": "8",
        },
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

    async def get(self, path: str, *, key: str | None = "default") -> tuple[int, Any]:
        headers = {"x-api-key": self.stack.api_key if key == "default" else key or ""}
        async with self.http.get(self.stack.gateway_url + path, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def delete(self, path: str) -> tuple[int, Any]:
        headers = {"x-api-key": self.stack.api_key}
        async with self.http.delete(self.stack.gateway_url + path, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None)

    async def session(self, room_name: str) -> dict[str, Any]:
        status, payload = await self.get(f"/v1/sessions/{room_name}")
        assert status == 200, payload
        return payload  # type: ignore[no-any-return]

    async def wait_for_session(
        self, room_name: str, predicate: Any, within: float, what: str
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            record = await self.session(room_name)
            if predicate(record):
                return record
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what}; last: {record}")
            await asyncio.sleep(0.2)

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


def voicegw(stack: Stack, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The operator's CLI, run as a separate process against the stack's gateway; `stdin` is
    what is typed to it (not a terminal)."""
    env = {**os.environ, "VOICEGW_URL": stack.gateway_url, "VOICEGW_API_KEY": stack.api_key}
    return subprocess.run(
        [sys.executable, "-m", "voice_gateway.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
