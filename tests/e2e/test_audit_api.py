"""An admin's story: who did what with which key. Create, rotate and revoke a key and start and
end a session with it, then read the trail back through GET /v1/audit, filtered and paged, and
never see a key's value."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import AGENT_JOIN_S, Gateway

pytestmark = pytest.mark.e2e  # on both stores: the trail is read by SQL


async def owner_key_id(gateway: Gateway) -> str:
    status, keys = await gateway.get("/v1/keys")
    assert status == 200, keys
    [owner] = [k for k in keys["data"] if k["name"] == "bootstrap"]
    return str(owner["id"])


async def trail(gateway: Gateway, query: str, key: str = "default") -> list[dict[str, Any]]:
    status, page = await gateway.get(f"/v1/audit?{query}", key=key)
    assert status == 200, page
    return page["data"]  # type: ignore[no-any-return]


async def test_the_trail_after_create_rotate_revoke_start_and_end(gateway: Gateway) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    owner = await owner_key_id(gateway)
    status, created, _ = await gateway.post(
        "/v1/keys", {"name": "audited", "scopes": ["sessions:write", "sessions:read"]}
    )
    assert status == 201, created
    key_id, first_value = created["id"], created["key"]
    status, rotated, _ = await gateway.post(f"/v1/keys/{key_id}/rotate")
    assert status == 200, rotated
    value = rotated["key"]

    status, session, _ = await gateway.post("/v1/sessions/start", {"agentId": "demo"}, key=value)
    assert status == 201, session
    room = session["roomName"]
    await gateway.wait_for_session(
        room, lambda r: r["participants"]["agent"]["joinedAt"], AGENT_JOIN_S, "the agent to join"
    )
    status, _, _ = await gateway.post("/v1/sessions/end", {"roomName": room}, key=value)
    assert status == 200
    status, _, _ = await gateway.post(f"/v1/keys/{key_id}/revoke")
    assert status == 200

    # Everything done to or with the key, newest first.
    events = await trail(gateway, f"keyId={key_id}&since={since}")
    assert [e["event"] for e in events] == [
        "key.revoked",
        "session.ended",
        "session.started",
        "key.rotated",
        "key.created",
    ]
    by_event = {e["event"]: e for e in events}
    for name in ("key.created", "key.rotated", "key.revoked"):
        assert by_event[name]["actorKeyId"] == owner, by_event[name]
    assert by_event["session.started"]["actorKeyId"] == key_id
    assert by_event["session.ended"]["actorKeyId"] == key_id
    assert by_event["session.started"]["sessionId"] == session["sessionId"]
    assert by_event["session.ended"]["details"]["endReason"] == "client_ended"
    assert all(e["requestId"] and e["occurredAt"] for e in events)
    text = json.dumps(events)
    assert first_value not in text and value not in text

    # Filters: one session, some events, one actor; and pages that add up.
    mine = await trail(gateway, f"sessionId={session['sessionId']}")
    assert {e["event"] for e in mine} == {"session.started", "session.ended"}
    changes = await trail(gateway, f"keyId={key_id}&event=key.rotated,key.revoked")
    assert [e["event"] for e in changes] == ["key.revoked", "key.rotated"]
    by_owner = await trail(gateway, f"actorKeyId={owner}&keyId={key_id}")
    assert len(by_owner) == 3
    status, page1 = await gateway.get(f"/v1/audit?keyId={key_id}&limit=2")
    assert status == 200 and page1["meta"]["count"] == 2 and page1["meta"]["nextCursor"]
    cursor = page1["meta"]["nextCursor"]
    status, page2 = await gateway.get(f"/v1/audit?keyId={key_id}&limit=2&cursor={cursor}")
    status, page3 = await gateway.get(
        f"/v1/audit?keyId={key_id}&limit=2&cursor={page2['meta']['nextCursor']}"
    )
    paged = page1["data"] + page2["data"] + page3["data"]
    assert [e["id"] for e in paged] == [e["id"] for e in events]
    assert page3["meta"]["nextCursor"] is None


async def test_only_a_secret_key_with_keys_write_reads_the_trail(gateway: Gateway) -> None:
    status, reader, _ = await gateway.post(
        "/v1/keys", {"name": "reader", "scopes": ["sessions:read"]}
    )
    assert status == 201
    status, payload = await gateway.get("/v1/audit", key=reader["key"])
    assert status == 403 and payload["error"]["code"] == "insufficient_scope"
    status, payload = await gateway.get("/v1/audit", key=None)
    assert status == 401 and payload["error"]["code"] == "missing_api_key"
    status, payload = await gateway.get("/v1/audit?event=key.stolen")
    assert status == 400 and "event" in payload["error"]["message"]
    status, payload = await gateway.get("/v1/audit?since=yesterday")
    assert status == 400 and "since" in payload["error"]["message"]
    status, payload = await gateway.get("/v1/audit?cursor=nonsense")
    assert status == 400 and payload["error"]["code"] == "invalid_request"
