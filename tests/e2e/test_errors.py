"""Bad input gets a clear 4xx with a stable code, and creates nothing in LiveKit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from livekit import api

from tests.e2e.conftest import Gateway, room_names

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture(loop_scope="session")
async def nothing_created(lkapi: api.LiveKitAPI) -> AsyncIterator[None]:
    before = await room_names(lkapi)
    yield
    assert await room_names(lkapi) == before, "a rejected request created a LiveKit room"


def assert_error(status: int, payload: Any, want_status: int, want_code: str) -> None:
    assert status == want_status, payload
    assert set(payload) == {"error"}
    assert payload["error"]["code"] == want_code
    assert payload["error"]["message"]
    assert payload["error"]["requestId"]


@pytest.mark.usefixtures("nothing_created")
async def test_body_that_is_not_json_is_invalid_json(gateway: Gateway) -> None:
    status, payload, _ = await gateway.post(
        "/v1/sessions/start", data=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(status, payload, 400, "invalid_json")


@pytest.mark.usefixtures("nothing_created")
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "agentId"),
        ({"agentId": "demo", "userIdentity": "has spaces"}, "userIdentity"),
        ({"agentId": "demo", "agentConfig": {"temperature": 2}}, "agentConfig.temperature"),
        ({"agentId": "demo", "agentConfig": {"stt": "nosuchvendor:x"}}, "agentConfig.stt"),
        ({"agentId": "demo", "surprise": 1}, "surprise"),
        ([1, 2], "object"),
    ],
)
async def test_invalid_request_names_the_field(gateway: Gateway, body: Any, field: str) -> None:
    status, payload, _ = await gateway.post("/v1/sessions/start", body)
    assert_error(status, payload, 400, "invalid_request")
    assert field in payload["error"]["message"]


@pytest.mark.usefixtures("nothing_created")
async def test_no_key_is_missing_api_key(gateway: Gateway) -> None:
    status, payload, _ = await gateway.post("/v1/sessions/start", {"agentId": "demo"}, key=None)
    assert_error(status, payload, 401, "missing_api_key")


@pytest.mark.usefixtures("nothing_created")
async def test_unknown_key_is_invalid_api_key(gateway: Gateway) -> None:
    status, payload, _ = await gateway.post(
        "/v1/sessions/start", {"agentId": "demo"}, key="vgw_sk_not-a-real-key"
    )
    assert_error(status, payload, 401, "invalid_api_key")
    assert "not-a-real-key" not in str(payload)


@pytest.mark.usefixtures("nothing_created")
async def test_bearer_header_is_accepted_like_x_api_key(gateway: Gateway) -> None:
    status, payload, _ = await gateway.post(
        "/v1/sessions/start",
        {"agentId": "no-such-agent"},
        key=None,
        headers={"Authorization": f"Bearer {gateway.stack.api_key}"},
    )
    assert_error(status, payload, 404, "agent_not_found")


@pytest.mark.usefixtures("nothing_created")
async def test_unknown_agent_is_agent_not_found(gateway: Gateway) -> None:
    status, payload, _ = await gateway.post("/v1/sessions/start", {"agentId": "nobody"})
    assert_error(status, payload, 404, "agent_not_found")


@pytest.mark.usefixtures("nothing_created")
async def test_unknown_room_is_session_not_found(gateway: Gateway) -> None:
    status, payload, _ = await gateway.post("/v1/sessions/end", {"roomName": "no-such-room"})
    assert_error(status, payload, 404, "session_not_found")


@pytest.mark.usefixtures("nothing_created")
async def test_huge_body_is_payload_too_large(gateway: Gateway) -> None:
    body = {"agentId": "demo", "userIdentity": "u", "pad": "x" * 200_000}
    status, payload, _ = await gateway.post("/v1/sessions/start", body)
    assert_error(status, payload, 413, "payload_too_large")


@pytest.mark.usefixtures("nothing_created")
async def test_agent_config_over_16_kib_is_payload_too_large(gateway: Gateway) -> None:
    body = {"agentId": "demo", "agentConfig": {"instructions": "x" * 17_000}}
    status, payload, _ = await gateway.post("/v1/sessions/start", body)
    assert_error(status, payload, 413, "payload_too_large")
    assert "agentConfig" in payload["error"]["message"]


@pytest.mark.usefixtures("nothing_created")
async def test_form_body_is_unsupported_media_type(gateway: Gateway) -> None:
    status, payload, _ = await gateway.post("/v1/sessions/start", data={"agentId": "demo"})
    assert_error(status, payload, 415, "unsupported_media_type")


@pytest.mark.usefixtures("nothing_created")
async def test_unknown_path_is_json_not_found(gateway: Gateway) -> None:
    status, payload, _ = await gateway.post("/v1/nothing-here", {})
    assert_error(status, payload, 404, "not_found")
