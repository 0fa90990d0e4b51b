"""What a call-center backend reads back: sessions by filter and page, one session, usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devstack.stack import Stack
from tests.e2e.conftest import Gateway, voicegw

pytestmark = pytest.mark.e2e


async def test_sessions_filter_paginate_and_add_up_to_usage(gateway: Gateway, stack: Stack) -> None:
    # "Z", not "+00:00": a "+" in a query string reads as a space.
    since = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rooms = []
    for i in range(3):
        session = await gateway.start(agentId="support", userIdentity=f"reader-{i}")
        rooms.append(session["roomName"])
    for room in rooms:
        status, _ = await gateway.end(room)
        assert status == 200

    status, page1 = await gateway.get(f"/v1/sessions?agentId=support&limit=2&since={since}")
    assert status == 200, page1
    assert page1["meta"]["count"] == 2 and page1["meta"]["nextCursor"]
    cursor = page1["meta"]["nextCursor"]
    status, page2 = await gateway.get(
        f"/v1/sessions?agentId=support&limit=2&since={since}&cursor={cursor}"
    )
    assert status == 200, page2
    listed = [s["roomName"] for s in page1["data"] + page2["data"]]
    assert listed == list(reversed(rooms)), "newest first, no gaps, no repeats"
    assert page2["meta"]["nextCursor"] is None

    status, mine = await gateway.get("/v1/sessions?userIdentity=reader-1&status=ended")
    assert [s["roomName"] for s in mine["data"]] == [rooms[1]]
    status, none = await gateway.get(f"/v1/sessions?status=active&agentId=support&since={since}")
    assert none["data"] == []

    status, bad = await gateway.get("/v1/sessions?status=sleeping")
    assert status == 400 and bad["error"]["code"] == "invalid_request"
    status, bad = await gateway.get("/v1/sessions?cursor=garbage")
    assert status == 400 and "cursor" in bad["error"]["message"]

    status, usage = await gateway.get(f"/v1/usage?since={since}")
    assert status == 200, usage
    assert usage["agents"]["support"]["sessions"] == 3
    assert usage["total"]["sessions"] >= 3
    assert usage["agents"]["support"]["minutes"] >= 0

    listed_cli = voicegw(stack, "sessions", "list", "--agent", "support", "--user", "reader-2")
    assert listed_cli.returncode == 0, listed_cli.stderr
    assert rooms[2] in listed_cli.stdout and rooms[0] not in listed_cli.stdout
    shown = voicegw(stack, "sessions", "show", rooms[0])
    assert shown.returncode == 0 and '"client_ended"' in shown.stdout
