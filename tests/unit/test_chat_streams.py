"""A chat session on a hosted model, against a real in-process gateway and a fake model server:
heartbeats while the model is silent, one reply at a time, a failing model stores nothing, and a
client that leaves mid-stream still gets its reply stored."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sseclient import SSEClient

from tests.unit.fake_llm import FakeLLM, Script
from voice_gateway.app import create_app
from voice_gateway.config import GatewaySettings

pytestmark = pytest.mark.unit

KEY = f"vgw_sk_{secrets.token_urlsafe(32)}"
HEADERS = {"x-api-key": KEY}
STREAM = {**HEADERS, "Accept": "text/event-stream"}


@pytest_asyncio.fixture(loop_scope="session")
async def fake_llm() -> AsyncIterator[FakeLLM]:
    fake = FakeLLM()
    async with fake.running():
        yield fake


@pytest_asyncio.fixture(loop_scope="session")
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    settings = GatewaySettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        bootstrap_api_key=SecretStr(KEY),
        livekit_api_secret=SecretStr(secrets.token_urlsafe(32)),
        openai_api_key=SecretStr("sk-test"),
        reaper_enabled=False,
        chat_heartbeat_seconds=0.2,
    )
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


async def open_session(client: TestClient[Any, Any], fake: FakeLLM) -> str:
    config = {"llm": "openai:test-model", "llmBaseUrl": fake.base_url, "greeting": "Hi there."}
    resp = await client.post(
        "/v1/chat/sessions", json={"agentId": "demo", "agentConfig": config}, headers=HEADERS
    )
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["sessionId"])


def events_of(raw: bytes) -> list[tuple[str, Any]]:
    return [(e.event, json.loads(e.data)) for e in SSEClient([raw]).events()]


async def history(client: TestClient[Any, Any], session_id: str) -> list[tuple[str, str]]:
    resp = await client.get(f"/v1/chat/sessions/{session_id}/messages", headers=HEADERS)
    assert resp.status == 200
    return [(m["role"], m["text"]) for m in (await resp.json())["data"]]


async def test_a_silent_model_gets_heartbeats_and_its_deltas_add_up(
    client: TestClient[Any, Any], fake_llm: FakeLLM
) -> None:
    fake_llm.script = Script(pieces=["Nine ", "to ", "five."], delay_before_first=1.0)
    session_id = await open_session(client, fake_llm)
    resp = await client.post(
        f"/v1/chat/sessions/{session_id}/messages", json={"text": "When?"}, headers=STREAM
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert resp.headers["X-Request-Id"]
    raw = await resp.read()
    assert raw.count(b": ping") >= 2  # comment lines while the model was silent
    events = events_of(raw)
    deltas = [d["delta"] for name, d in events if name == "message.delta"]
    [(name, completed)] = [e for e in events if e[0] == "message.completed"]
    assert deltas == ["Nine ", "to ", "five."] and completed["text"] == "Nine to five."
    # The model saw the agent's prompt, its greeting and the question.
    sent = fake_llm.requests[-1]["messages"]
    assert sent[0]["role"] == "system"
    assert sent[1:] == [
        {"role": "assistant", "content": "Hi there."},
        {"role": "user", "content": "When?"},
    ]
    assert await history(client, session_id) == [
        ("agent", "Hi there."),
        ("user", "When?"),
        ("agent", "Nine to five."),
    ]


async def test_one_reply_at_a_time(client: TestClient[Any, Any], fake_llm: FakeLLM) -> None:
    fake_llm.script = Script(pieces=["Slow."], delay_before_first=1.0)
    session_id = await open_session(client, fake_llm)
    path = f"/v1/chat/sessions/{session_id}/messages"
    first = asyncio.ensure_future(client.post(path, json={"text": "one"}, headers=HEADERS))
    await asyncio.sleep(0.4)
    second = await client.post(path, json={"text": "two"}, headers=HEADERS)
    assert second.status == 409
    assert (await second.json())["error"]["code"] == "reply_in_progress"
    assert second.headers["Retry-After"] == "1"
    assert (await first).status == 200
    assert [t for _, t in await history(client, session_id)] == ["Hi there.", "one", "Slow."]


async def test_a_failing_model_stores_nothing_and_frees_the_turn(
    client: TestClient[Any, Any], fake_llm: FakeLLM
) -> None:
    session_id = await open_session(client, fake_llm)
    path = f"/v1/chat/sessions/{session_id}/messages"
    fake_llm.script = Script(status=500)
    resp = await client.post(path, json={"text": "hello?"}, headers=HEADERS)
    assert resp.status == 503
    assert (await resp.json())["error"]["code"] == "llm_unavailable"
    streamed = await client.post(path, json={"text": "hello?"}, headers=STREAM)
    assert streamed.status == 200
    [(name, error)] = events_of(await streamed.read())
    assert name == "error" and error["error"]["code"] == "llm_unavailable"
    assert error["error"]["requestId"] == streamed.headers["X-Request-Id"]
    assert await history(client, session_id) == [("agent", "Hi there.")]
    fake_llm.script = Script(pieces=["Back."])
    resp = await client.post(path, json={"text": "hello?"}, headers=HEADERS)
    assert resp.status == 200 and (await resp.json())["message"]["text"] == "Back."


async def test_a_client_that_leaves_mid_stream_still_gets_its_reply_stored(
    client: TestClient[Any, Any], fake_llm: FakeLLM
) -> None:
    fake_llm.script = Script(pieces=["Stored ", "anyway."], delay_before_first=0.5)
    session_id = await open_session(client, fake_llm)
    resp = await client.post(
        f"/v1/chat/sessions/{session_id}/messages", json={"text": "bye"}, headers=STREAM
    )
    assert resp.status == 200
    resp.close()  # gone before the first piece
    for _ in range(50):
        if len(await history(client, session_id)) == 3:
            break
        await asyncio.sleep(0.1)
    assert await history(client, session_id) == [
        ("agent", "Hi there."),
        ("user", "bye"),
        ("agent", "Stored anyway."),
    ]
