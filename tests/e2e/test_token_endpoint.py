"""LiveKit's standard token endpoint (POST /v1/livekit/token) as LiveKit's clients call it: the
same sessions, keys, limits and CORS as /v1/sessions/start, and a refusal that creates nothing.
The browser story with livekit-client's own TokenSource is in test_web_client.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
import pytest_asyncio
from livekit import api

from devstack.stack import Stack
from tests.e2e.conftest import Gateway, room_names
from tests.e2e.test_keys import agent_joined, assert_error, create_key, new_origin, publishable_key
from tests.e2e.test_metrics import scrape, value

pytestmark = [pytest.mark.e2e, pytest.mark.one_store]

TOKEN = "/v1/livekit/token"


def demo(**dispatch: Any) -> dict[str, Any]:
    return {"agents": [{"agent_name": "demo", **dispatch}]}


async def session_ids(gateway: Gateway) -> set[str]:
    status, page = await gateway.get("/v1/sessions?limit=200")
    assert status == 200, page
    return {s["sessionId"] for s in page["data"]}


@pytest_asyncio.fixture(loop_scope="session")
async def nothing_created(gateway: Gateway, lkapi: api.LiveKitAPI) -> AsyncIterator[None]:
    rooms, sessions = await room_names(lkapi), await session_ids(gateway)
    yield
    assert await room_names(lkapi) <= rooms, "a refused request created a LiveKit room"
    assert await session_ids(gateway) == sessions, "a refused request created a session"


async def test_a_starter_app_gets_a_token_for_a_new_session(
    gateway: Gateway, stack: Stack, lkapi: api.LiveKitAPI
) -> None:
    origin = new_origin()
    pk = await publishable_key(gateway, origin)
    metrics_before = await scrape(gateway.http, f"{stack.gateway_url}/metrics")
    body = {
        "participant_identity": "starter-1",
        "participant_name": "Ada",
        "participant_attributes": {"plan": "pro"},
        "room_config": demo(metadata=json.dumps({"greeting": "Hello from the token endpoint."})),
    }
    status, answer, resp = await gateway.post(
        TOKEN, body, key=pk["key"], headers={"Origin": origin}
    )
    assert status == 201, answer
    assert set(answer) == {"server_url", "participant_token", "room_name", "participant_name"}
    assert answer["server_url"] == stack.livekit.url and answer["participant_name"] == "Ada"
    assert resp.headers["Access-Control-Allow-Origin"] == origin
    claims = jwt.decode(answer["participant_token"], options={"verify_signature": False})
    assert claims["sub"] == "starter-1" and claims["name"] == "Ada"
    assert claims["attributes"] == {"plan": "pro"}
    assert claims["video"]["room"] == answer["room_name"] and claims["video"]["roomJoin"]
    assert "roomConfig" not in claims  # the gateway dispatched the agent itself
    # Counted like any start: the session, its setup stages, the request under its route.
    metrics = await scrape(gateway.http, f"{stack.gateway_url}/metrics")
    for name, labels in (
        ("voicegw_sessions_started_total", {"agent": "demo", "channel": "web"}),
        ("voicegw_session_start_stage_duration_seconds_count", {"stage": "create_room"}),
        ("voicegw_http_requests_total", {"route": TOKEN, "status": "201"}),
    ):
        assert value(metrics, name, **labels) == value(metrics_before, name, **labels) + 1, name

    room = answer["room_name"]
    assert room in await room_names(lkapi)
    session = await gateway.session(room)
    assert session["agentId"] == "demo" and session["userIdentity"] == "starter-1"
    assert session["channel"] == "web" and session["status"] == "active"
    # The room was created with its agent's dispatch (one LiveKit call), a dispatch like any.
    dispatches = await lkapi.agent_dispatch.list_dispatch(room)
    [dispatch] = [d for d in dispatches if d.agent_name == stack.agent_name]
    assert json.loads(dispatch.metadata)["config"]["greeting"] == "Hello from the token endpoint."
    await agent_joined(gateway, room)
    status, ended, _ = await gateway.post(
        "/v1/sessions/end", {"roomName": room}, key=pk["key"], headers={"Origin": origin}
    )
    assert status == 200 and ended["endReason"] == "client_ended", ended


@pytest.mark.usefixtures("nothing_created")
async def test_bad_requests_are_refused_and_create_nothing(gateway: Gateway) -> None:
    origin = new_origin()
    pk = await publishable_key(gateway, origin)
    reader = (await create_key(gateway, name="reader", scopes=["sessions:read"]))["key"]
    support_only = (await publishable_key(gateway, origin, agents=("support",)))["key"]
    browser = {"Origin": origin}
    cases: list[tuple[str, dict[str, Any], str | None, dict[str, str], int, str]] = [
        ("unknown agent", {"room_config": {"agents": [{"agent_name": "nobody"}]}},
         None, {}, 404, "agent_not_found"),
        ("a chosen room", {"room_name": "my-room", "room_config": demo()},
         None, {}, 400, "invalid_request"),
        ("two agents", {"room_config": {"agents": [{"agent_name": "demo"}] * 2}},
         None, {}, 400, "invalid_request"),
        ("no agent", {}, None, {}, 400, "invalid_request"),
        ("a room setting", {"room_config": {**demo(), "max_participants": 99}},
         None, {}, 400, "invalid_request"),
        ("an unknown field", {"room_config": demo(), "room": "x"},
         None, {}, 400, "invalid_request"),
        ("a key that may only read", {"room_config": demo()},
         reader, {}, 403, "insufficient_scope"),
        ("a publishable key for another agent", {"room_config": demo()},
         support_only, browser, 403, "insufficient_scope"),
        ("a publishable key from another origin", {"room_config": demo()},
         pk["key"], {"Origin": new_origin()}, 403, "origin_not_allowed"),
        ("a publishable key outside a browser", {"room_config": demo()},
         pk["key"], {}, 403, "origin_not_allowed"),
        ("a secret key from a browser", {"room_config": demo()},
         None, browser, 403, "secret_key_in_browser"),
        ("an unknown key", {"room_config": demo()},
         "vgw_sk_" + "x" * 43, {}, 401, "invalid_api_key"),
    ]  # fmt: skip
    for what, body, key, headers, want_status, want_code in cases:
        status, payload, _ = await gateway.post(TOKEN, body, key=key or "default", headers=headers)
        assert (status, payload["error"]["code"]) == (want_status, want_code), (what, payload)
        assert_error(status, payload, want_status, want_code)
    status, payload, _ = await gateway.post(
        TOKEN, data=b"{", headers={"content-type": "application/json"}
    )
    assert_error(status, payload, 400, "invalid_json")


async def test_cors_preflights_for_the_page_endpoints(gateway: Gateway, stack: Stack) -> None:
    origin = new_origin()
    await publishable_key(gateway, origin)
    for path, method in ((TOKEN, "POST"), ("/v1/agents", "GET")):
        headers = {
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type,x-api-key",
        }
        async with gateway.http.options(stack.gateway_url + path, headers=headers) as resp:
            assert resp.status == 204, path
            assert resp.headers["Access-Control-Allow-Origin"] == origin
            assert method in resp.headers["Access-Control-Allow-Methods"]


async def test_agents_are_listed_per_key(gateway: Gateway) -> None:
    origin = new_origin()
    pk = await publishable_key(gateway, origin, agents=("support",))
    status, owner_view = await gateway.get("/v1/agents")
    assert status == 200 and {a["id"] for a in owner_view["data"]} >= {"demo", "support"}
    async with gateway.http.get(
        gateway.stack.gateway_url + "/v1/agents", headers={"x-api-key": pk["key"], "Origin": origin}
    ) as resp:
        assert resp.status == 200
        listed = await resp.json()
    assert [a["id"] for a in listed["data"]] == ["support"]
    assert "instructions" not in json.dumps(listed)


async def test_a_secret_key_made_for_a_browser_is_accepted_there(gateway: Gateway) -> None:
    origin = new_origin()
    console = await create_key(
        gateway, name="ops console", scopes=["sessions:read"], allowBrowser=True
    )
    assert console["allowBrowser"] is True
    plain = await create_key(gateway, name="server", scopes=["sessions:read"])
    assert plain["allowBrowser"] is False
    for key, want in ((console["key"], 200), (plain["key"], 403)):
        async with gateway.http.get(
            gateway.stack.gateway_url + "/v1/sessions", headers={"x-api-key": key, "Origin": origin}
        ) as resp:
            assert resp.status == want, await resp.text()
