"""The agent calls out: POST /v1/calls rings a real SIP phone through an outbound trunk; answered
it becomes an active session and the phone hears the greeting; unanswered it ends no_answer."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from devstack.sip_phone import Baresip, loud_spans
from devstack.stack import Stack
from tests.e2e.conftest import Gateway, voicegw
from tests.e2e.phones import fresh_number, phone, wait_for_agent_line

pytestmark = [pytest.mark.e2e, pytest.mark.one_store]


async def trunk_to(gateway: Gateway, callee: Baresip, caller_id: str) -> dict[str, Any]:
    status, trunk, _ = await gateway.post(
        "/v1/outbound-trunks",
        {"name": f"to {callee.number}", "address": callee.address, "numbers": [caller_id]},
    )
    assert status == 201, trunk
    return trunk  # type: ignore[no-any-return]


async def call(gateway: Gateway, trunk: dict[str, Any], to: str) -> dict[str, Any]:
    status, session, _ = await gateway.post(
        "/v1/calls",
        {"agentId": "demo", "to": to, "from": trunk["numbers"][0], "outboundTrunk": trunk["id"]},
    )
    assert status == 201, session
    return session  # type: ignore[no-any-return]


async def test_the_agent_calls_a_phone_that_answers_and_greets_it(gateway: Gateway) -> None:
    caller_id = fresh_number()
    async with phone(auto_answer=True) as callee:
        trunk = await trunk_to(gateway, callee, caller_id)
        session = await call(gateway, trunk, callee.number)
        assert session["status"] == "ringing" and session["channel"] == "phone"
        assert session["phone"] == {
            "direction": "outbound",
            "callerNumber": caller_id,
            "calledNumber": callee.number,
            "sipCallId": None,
        }
        room = session["roomName"]
        await callee.wait_for("CALL_ESTABLISHED", 45)
        active = await gateway.wait_for_session(
            room, lambda r: r["status"] == "active", 30, "the answered call to be active"
        )
        assert active["phone"]["sipCallId"]
        said = await wait_for_agent_line(gateway, room)
        assert said[0]["text"].startswith("Hello! I am the demo agent"), said
        status, ended = await gateway.end(room)
        assert status == 200 and ended["endReason"] == "client_ended"
        await callee.wait_for("CALL_CLOSED", 15)
        await asyncio.sleep(0.5)
        spans = loud_spans(callee.heard())
        assert spans, "the phone heard no greeting"


async def test_a_call_nobody_answers_ends_no_answer(gateway: Gateway) -> None:
    async with phone() as callee:  # rings, nobody picks up
        trunk = await trunk_to(gateway, callee, fresh_number())
        session = await call(gateway, trunk, callee.number)
        await callee.wait_for("CALL_INCOMING", 30)
        ended = await gateway.wait_for_session(
            session["roomName"], lambda r: r["status"] != "ringing", 60, "the call to give up"
        )
        assert ended["status"] == "ended", ended
        assert ended["endReason"] == "no_answer", ended
        assert ended["startedAt"] is None


async def test_a_call_the_phone_rejects_ends_busy(gateway: Gateway, stack: Stack) -> None:
    async with phone() as callee:
        trunk = await trunk_to(gateway, callee, fresh_number())
        placed = await asyncio.to_thread(
            voicegw, stack, "--json", "calls", "start", "--agent", "demo", "--to", callee.number,
            "--trunk", trunk["id"],
        )  # fmt: skip
        assert placed.returncode == 0, placed.stderr
        session = json.loads(placed.stdout)
        await callee.wait_for("CALL_INCOMING", 30)
        await callee.hangup()  # baresip declines a ringing call with 486 Busy Here
        ended = await gateway.wait_for_session(
            session["roomName"], lambda r: r["status"] != "ringing", 30, "the call to end"
        )
        assert (ended["status"], ended["endReason"]) == ("ended", "busy"), ended
