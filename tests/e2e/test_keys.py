"""API keys people can trust, against the real stack: values shown once and stored as hashes,
revocation and rotation that take effect on the next request, publishable keys held to their
agents and origins, CORS for those origins only, per-key limits, an audit trail, quiet logs."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import create_async_engine

from devstack.stack import Stack
from tests.e2e.conftest import AGENT_JOIN_S, Gateway, voicegw
from voice_gateway.store.tables import api_keys, audit_events

pytestmark = pytest.mark.e2e

# Every key value the tests saw; none may show up in any process log.
SEEN_VALUES: list[str] = []


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_origin() -> str:
    return f"https://app-{secrets.token_hex(4)}.example.test"


def assert_error(status: int, payload: Any, want_status: int, want_code: str) -> None:
    assert status == want_status, payload
    assert payload["error"]["code"] == want_code, payload
    assert payload["error"]["message"] and payload["error"]["requestId"]


async def create_key(gateway: Gateway, **body: Any) -> dict[str, Any]:
    status, payload, resp = await gateway.post("/v1/keys", body)
    assert status == 201, payload
    assert resp.headers["Cache-Control"] == "no-store"
    SEEN_VALUES.append(payload["key"])
    return payload  # type: ignore[no-any-return]


async def publishable_key(
    gateway: Gateway, origin: str, agents: tuple[str, ...] = ("demo",)
) -> dict[str, Any]:
    return await create_key(
        gateway,
        name="web",
        kind="publishable",
        agentIds=list(agents),
        allowedOrigins=[origin],
    )


async def start(
    gateway: Gateway, key: str, origin: str | None = None, **body: Any
) -> tuple[int, Any, aiohttp.ClientResponse]:
    headers = {"Origin": origin} if origin else {}
    return await gateway.post(
        "/v1/sessions/start", {"agentId": "demo", **body}, key=key, headers=headers
    )


async def end(
    gateway: Gateway, room: str, key: str = "default", origin: str | None = None
) -> tuple[int, Any]:
    headers = {"Origin": origin} if origin else {}
    status, payload, _ = await gateway.post(
        "/v1/sessions/end", {"roomName": room}, key=key, headers=headers
    )
    return status, payload


async def db_rows(stack: Stack, statement: Any) -> list[Row[Any]]:
    assert stack.database_url
    engine = create_async_engine(stack.database_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(statement)).all())
    finally:
        await engine.dispose()


async def agent_joined(gateway: Gateway, room: str) -> None:
    """Ending a room before its agent arrives leaves the dispatched job to join (and so re-create)
    it later, busying the worker for the tests after these; so sessions here end once joined."""
    await gateway.wait_for_session(
        room, lambda r: r["participants"]["agent"]["joinedAt"], AGENT_JOIN_S, "the agent to join"
    )


@pytest_asyncio.fixture(loop_scope="session")
async def rooms_to_end(gateway: Gateway) -> AsyncIterator[list[str]]:
    """Rooms a test started; ended with the owner key whatever the test's outcome."""
    rooms: list[str] = []
    yield rooms
    for room in rooms:
        if (await gateway.session(room))["status"] != "ended":
            with contextlib.suppress(AssertionError):
                await agent_joined(gateway, room)
            await end(gateway, room)


async def test_the_value_is_shown_once_and_never_listed(gateway: Gateway) -> None:
    created = await create_key(gateway, name="reader", scopes=["sessions:read"])
    value = created["key"]
    assert value.startswith("vgw_sk_") and len(value) >= 40
    assert created["id"].startswith("key_") and created["prefix"] == value[: len(created["prefix"])]
    assert created["kind"] == "secret" and created["scopes"] == ["sessions:read"]
    assert created["rateLimitPerMinute"] and created["maxConcurrentSessions"]

    for path in ("/v1/keys", f"/v1/keys/{created['id']}"):
        status, listed = await gateway.get(path)
        assert status == 200, listed
        text = json.dumps(listed)
        assert value not in text and sha256(value) not in text
    status, listed = await gateway.get("/v1/keys")
    [row] = [k for k in listed["data"] if k["id"] == created["id"]]
    assert set(row) == set(created) - {"key"}
    assert not [field for k in listed["data"] for field in k if "key" in field.lower()]
    assert row["prefix"] == created["prefix"] and row["revokedAt"] is None

    status, payload = await gateway.get("/v1/sessions", key=value)
    assert status == 200, payload


async def test_the_database_holds_a_hash_and_the_audit_trail_holds_ids(
    gateway: Gateway, stack: Stack
) -> None:
    created = await create_key(gateway, name="stored", scopes=["sessions:read"])
    value = created["key"]
    [row] = await db_rows(stack, select(api_keys).where(api_keys.c.id == created["id"]))
    assert row.key_hash == sha256(value)
    assert all(value not in str(column) for column in row)
    [event] = await db_rows(
        stack, select(audit_events).where(audit_events.c.key_id == created["id"])
    )
    assert event.event == "key.created" and event.actor_key_id
    assert value not in str(event) and sha256(value) not in str(event)


async def test_a_revoked_key_fails_on_the_very_next_request(gateway: Gateway) -> None:
    created = await create_key(gateway, name="to-revoke", scopes=["sessions:read"])
    assert (await gateway.get("/v1/sessions", key=created["key"]))[0] == 200
    status, revoked, _ = await gateway.post(f"/v1/keys/{created['id']}/revoke")
    assert status == 200 and revoked["revokedAt"], revoked
    status, payload = await gateway.get("/v1/sessions", key=created["key"])
    assert_error(status, payload, 401, "invalid_api_key")
    status, again, _ = await gateway.post(f"/v1/keys/{created['id']}/revoke")
    assert status == 200 and again["revokedAt"] == revoked["revokedAt"]
    status, payload, _ = await gateway.post(f"/v1/keys/{created['id']}/rotate")
    assert_error(status, payload, 409, "key_revoked")
    status, payload, _ = await gateway.post("/v1/keys/key_doesnotexist/revoke")
    assert_error(status, payload, 404, "key_not_found")


async def test_after_rotation_the_old_value_fails_and_the_new_one_works(
    gateway: Gateway, stack: Stack
) -> None:
    created = await create_key(gateway, name="to-rotate", scopes=["sessions:read"])
    status, rotated, resp = await gateway.post(f"/v1/keys/{created['id']}/rotate")
    assert status == 200, rotated
    assert resp.headers["Cache-Control"] == "no-store"
    SEEN_VALUES.append(rotated["key"])
    assert rotated["id"] == created["id"] and rotated["key"] != created["key"]
    assert rotated["rotatedAt"]
    status, payload = await gateway.get("/v1/sessions", key=created["key"])
    assert_error(status, payload, 401, "invalid_api_key")
    assert (await gateway.get("/v1/sessions", key=rotated["key"]))[0] == 200
    events = await db_rows(
        stack,
        select(audit_events.c.event)
        .where(audit_events.c.key_id == created["id"])
        .order_by(audit_events.c.id),
    )
    assert [e.event for e in events] == ["key.created", "key.rotated"]


async def test_an_expired_key_fails(gateway: Gateway) -> None:
    status, payload, _ = await gateway.post(
        "/v1/keys", {"name": "late", "expiresAt": "2000-01-01T00:00:00Z"}
    )
    assert_error(status, payload, 400, "invalid_request")
    assert "expiresAt" in payload["error"]["message"]

    expires = datetime.now(UTC) + timedelta(seconds=2)
    created = await create_key(
        gateway, name="short-lived", scopes=["sessions:read"], expiresAt=expires.isoformat()
    )
    assert (await gateway.get("/v1/sessions", key=created["key"]))[0] == 200
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.3)
    status, payload = await gateway.get("/v1/sessions", key=created["key"])
    assert_error(status, payload, 401, "invalid_api_key")
    assert "expired" in payload["error"]["message"]


async def test_a_publishable_key_from_a_disallowed_origin_is_refused(gateway: Gateway) -> None:
    origin = new_origin()
    pk = await publishable_key(gateway, origin)
    assert pk["key"].startswith("vgw_pk_") and pk["scopes"] == ["sessions:write"]
    for bad in (new_origin(), origin.replace("https://", "http://"), None):
        status, payload, resp = await start(gateway, pk["key"], bad)
        assert_error(status, payload, 403, "origin_not_allowed")
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_a_publishable_key_on_read_and_admin_endpoints_is_the_wrong_key_type(
    gateway: Gateway, http: aiohttp.ClientSession, stack: Stack
) -> None:
    origin = new_origin()
    pk = await publishable_key(gateway, origin)
    headers = {"x-api-key": pk["key"], "Origin": origin}
    for path in ("/v1/sessions", "/v1/keys", "/v1/ops/rooms"):
        async with http.get(stack.gateway_url + path, headers=headers) as resp:
            assert_error(resp.status, await resp.json(), 403, "wrong_key_type")
    status, payload, _ = await gateway.post(
        "/v1/keys", {"name": "escalate"}, key=pk["key"], headers={"Origin": origin}
    )
    assert_error(status, payload, 403, "wrong_key_type")


async def test_a_publishable_key_for_another_agent_is_refused(gateway: Gateway) -> None:
    origin = new_origin()
    pk = await publishable_key(gateway, origin, agents=("support",))
    status, payload, _ = await start(gateway, pk["key"], origin)
    assert_error(status, payload, 403, "insufficient_scope")
    assert "demo" in payload["error"]["message"]


async def test_a_publishable_key_sets_only_the_overrides_the_agent_allows(
    gateway: Gateway,
) -> None:
    """An allowed override (greeting) starts a session in the next test."""
    origin = new_origin()
    pk = await publishable_key(gateway, origin)
    for config in ({"greeting": "Hi", "instructions": "Be evil."}, {"llm": "openai:gpt-4o"}):
        status, payload, _ = await start(gateway, pk["key"], origin, agentConfig=config)
        assert_error(status, payload, 403, "insufficient_scope")
        assert list(config)[-1] in payload["error"]["message"]


async def test_a_publishable_key_ends_only_the_sessions_it_started(
    gateway: Gateway, stack: Stack, rooms_to_end: list[str]
) -> None:
    origin = new_origin()
    mine, other = await publishable_key(gateway, origin), await publishable_key(gateway, origin)
    status, started, resp = await start(
        gateway, mine["key"], origin, agentConfig={"greeting": "Hi"}
    )
    assert status == 201, started
    assert resp.headers["Access-Control-Allow-Origin"] == origin
    room = started["roomName"]
    rooms_to_end.append(room)
    by_owner = (await gateway.start(agentId="demo"))["roomName"]
    rooms_to_end.append(by_owner)

    status, payload = await end(gateway, room, other["key"], origin)
    assert_error(status, payload, 403, "insufficient_scope")
    status, payload = await end(gateway, by_owner, mine["key"], origin)
    assert_error(status, payload, 403, "insufficient_scope")
    await agent_joined(gateway, room)
    status, payload = await end(gateway, room, mine["key"], origin)
    assert status == 200 and payload["status"] == "ended", payload

    rows = await db_rows(
        stack,
        select(audit_events.c.event, audit_events.c.key_id, audit_events.c.actor_key_id)
        .where(audit_events.c.session_id == started["sessionId"])
        .order_by(audit_events.c.id),
    )
    assert [tuple(r) for r in rows] == [
        ("session.started", mine["id"], mine["id"]),
        ("session.ended", mine["id"], mine["id"]),
    ]


async def test_cors_preflight_answers_allowed_origins_only(
    gateway: Gateway, http: aiohttp.ClientSession, stack: Stack
) -> None:
    origin = new_origin()
    pk = await publishable_key(gateway, origin)

    async def preflight(path: str, from_origin: str) -> aiohttp.ClientResponse:
        headers = {
            "Origin": from_origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-api-key",
        }
        async with http.options(stack.gateway_url + path, headers=headers) as resp:
            await resp.read()
            return resp

    for path in ("/v1/sessions/start", "/v1/sessions/end"):
        ok = await preflight(path, origin)
        assert ok.status == 204
        assert ok.headers["Access-Control-Allow-Origin"] == origin
        assert "POST" in ok.headers["Access-Control-Allow-Methods"]
        assert "x-api-key" in ok.headers["Access-Control-Allow-Headers"].lower()
        assert "Origin" in ok.headers["Vary"]

    for path, from_origin in (
        ("/v1/sessions/start", new_origin()),
        ("/v1/keys", origin),  # not a browser endpoint, whoever asks
    ):
        headers = {"Origin": from_origin, "Access-Control-Request-Method": "POST"}
        async with http.options(stack.gateway_url + path, headers=headers) as resp:
            assert_error(resp.status, await resp.json(), 403, "origin_not_allowed")
            assert not any(h.lower().startswith("access-control-") for h in resp.headers)

    await gateway.post(f"/v1/keys/{pk['id']}/revoke")
    assert (await preflight("/v1/sessions/start", origin)).status == 403


async def test_the_rate_limit_answers_429_with_retry_after_then_recovers(
    gateway: Gateway,
) -> None:
    """Every start request counts, refused ones too, so an unknown agent (404) keeps this test
    from starting sessions."""
    key = (
        await create_key(gateway, name="bursty", rateLimitPerMinute=60, rateLimitWindowSeconds=2)
    )["key"]
    await asyncio.sleep(2 - time.time() % 2 + 0.05)  # the start of a fresh 2 s window
    limited = None
    for _ in range(6):
        status, payload, resp = await start(gateway, key, agentId="no-such-agent")
        if status == 429:
            limited = (payload, resp.headers.get("Retry-After"))
            break
        assert_error(status, payload, 404, "agent_not_found")
    assert limited is not None, "six starts at 2 per 2 s were never limited"
    payload, retry_after = limited
    assert_error(429, payload, 429, "rate_limited")
    assert retry_after is not None and 1 <= int(retry_after) <= 2
    await asyncio.sleep(int(retry_after))
    status, payload, _ = await start(gateway, key, agentId="no-such-agent")
    assert_error(status, payload, 404, "agent_not_found")


async def test_the_concurrency_cap_answers_429_and_frees_a_slot_when_a_session_ends(
    gateway: Gateway, rooms_to_end: list[str]
) -> None:
    key = (await create_key(gateway, name="one-at-a-time", maxConcurrentSessions=1))["key"]
    status, first, _ = await start(gateway, key)
    assert status == 201, first
    rooms_to_end.append(first["roomName"])
    status, payload, resp = await start(gateway, key)
    assert_error(status, payload, 429, "rate_limited")
    assert int(resp.headers["Retry-After"]) >= 1
    await agent_joined(gateway, first["roomName"])
    status, ended = await end(gateway, first["roomName"], key)
    assert status == 200, ended
    status, second, _ = await start(gateway, key)
    assert status == 201, second
    rooms_to_end.append(second["roomName"])


async def test_a_key_without_sessions_write_cannot_start(gateway: Gateway) -> None:
    reader = await create_key(gateway, name="reader", scopes=["sessions:read", "keys:write"])
    status, payload, _ = await start(gateway, reader["key"])
    assert_error(status, payload, 403, "insufficient_scope")
    assert "sessions:write" in payload["error"]["message"]
    status, payload, _ = await gateway.post(
        "/v1/keys", {"name": "escalate", "scopes": ["ops:write"]}, key=reader["key"]
    )
    assert_error(status, payload, 403, "insufficient_scope")


async def test_the_cli_creates_lists_rotates_and_revokes(gateway: Gateway, stack: Stack) -> None:
    made = voicegw(
        stack,
        "--json",
        "keys",
        "create",
        "--name",
        "cli",
        "--scope",
        "sessions:read",
        "--expires-in",
        "1d",
    )
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    SEEN_VALUES.append(created["key"])
    assert created["expiresAt"]

    listed = voicegw(stack, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    assert created["id"] in listed.stdout and created["key"] not in listed.stdout

    rotated = voicegw(stack, "keys", "rotate", created["id"])
    assert rotated.returncode == 0, rotated.stderr
    [new_value] = [
        line.removeprefix("key: ")
        for line in rotated.stdout.splitlines()
        if line.startswith("key: ")
    ]
    SEEN_VALUES.append(new_value)
    assert "shown" in rotated.stderr
    assert (await gateway.get("/v1/sessions", key=new_value))[0] == 200

    revoked = voicegw(stack, "keys", "revoke", created["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert (await gateway.get("/v1/sessions", key=new_value))[0] == 401
    missing = voicegw(stack, "keys", "revoke", "key_doesnotexist")
    assert missing.returncode == 1 and "key_not_found" in missing.stderr


async def test_no_key_value_or_hash_is_in_any_log(stack: Stack) -> None:
    """Last in this module, so it sees every value the tests above created."""
    assert SEEN_VALUES
    logs = {p.name: p.read_text(errors="replace") for p in stack.log_dir.glob("*.log")}
    assert {"gateway.log", "livekit.log"} <= set(logs) and any(n.startswith("worker") for n in logs)
    for value in [stack.api_key, *SEEN_VALUES]:
        for secret in (value, sha256(value)):
            for name, text in logs.items():
                assert secret not in text, f"a key value or hash is in {name}"
