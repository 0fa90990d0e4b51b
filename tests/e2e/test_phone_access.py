"""Who may call a number: its credentials and its allowed addresses; and numbers survive a Redis
that restarted empty, because the gateway rebuilds LiveKit's SIP state from its database."""

from __future__ import annotations

import asyncio

import pytest
from livekit import api

from devstack.stack import Stack
from tests.e2e.conftest import Gateway
from tests.e2e.phones import add_number, phone, phone_session, sip_address

pytestmark = [pytest.mark.e2e, pytest.mark.one_store]


async def assert_no_session(gateway: Gateway, caller: str) -> None:
    code, page = await gateway.get("/v1/sessions?channel=phone&limit=200")
    assert code == 200, page
    mine = [s for s in page["data"] if s["phone"]["callerNumber"] == caller]
    assert mine == [], mine


async def test_wrong_credentials_are_refused_and_right_ones_get_through(
    gateway: Gateway, stack: Stack
) -> None:
    number = await add_number(
        gateway, allowedAddresses=[], auth={"username": "pbx", "password": "correct-horse-9"}
    )
    assert number["hasAuth"] is True and "password" not in str(number)
    uri = f"sip:{number['number']}@{sip_address(stack)}"
    async with phone(auth=("pbx", "wrong-password-1")) as intruder:
        await intruder.dial(uri)
        closed = await intruder.wait_for("CALL_CLOSED", 30)
        assert not intruder.saw("CALL_ESTABLISHED"), closed
    await asyncio.sleep(1)
    await assert_no_session(gateway, intruder.number)

    async with phone(auth=("pbx", "correct-horse-9")) as pbx:
        await pbx.dial(uri)
        await pbx.wait_for("CALL_ESTABLISHED", 45)
        session = await phone_session(gateway, pbx.number)
        await gateway.end(session["roomName"])


async def test_a_call_from_an_address_not_allowed_is_refused(
    gateway: Gateway, stack: Stack
) -> None:
    number = await add_number(gateway, allowedAddresses=["192.0.2.10/32"])
    async with phone() as stranger:
        await stranger.dial(f"sip:{number['number']}@{sip_address(stack)}")
        # LiveKit drops an INVITE that matches no trunk without a word (a scanner learns
        # nothing), so the phone only ever hears itself ring; it gives up after a while.
        await asyncio.sleep(10)
        assert not stranger.saw("CALL_ESTABLISHED"), stranger.events
        await stranger.hangup()
    await asyncio.sleep(1)
    await assert_no_session(gateway, stranger.number)


@pytest.mark.disruptive
async def test_numbers_still_work_after_redis_restarts_empty(
    gateway: Gateway, stack: Stack
) -> None:
    number = await add_number(gateway)
    # LiveKit 1.13.5's agent dispatch did not recover from Redis losing its data while the
    # server ran ("failed to send job request: no response from servers"), so the outage is
    # the whole LiveKit tier coming back on an empty Redis: no trunk, rule or room is left.
    await asyncio.to_thread(stack.restart_livekit, empty_redis=True)
    async with api.LiveKitAPI(
        stack.livekit.http_url, stack.livekit.api_key, stack.livekit.api_secret, failover=False
    ) as lk:
        deadline = asyncio.get_running_loop().time() + 60
        while True:  # the gateway puts back the number's trunk and rule by itself
            trunks = await lk.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())
            rules = await lk.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())
            ours = [t.sip_trunk_id for t in trunks.items if number["number"] in t.numbers]
            if ours and any(ours[0] in r.trunk_ids for r in rules.items):
                break
            assert asyncio.get_running_loop().time() < deadline, "the number was not rebuilt"
            await asyncio.sleep(0.5)
    async with phone() as caller:
        await caller.dial(f"sip:{number['number']}@{sip_address(stack)}")
        await caller.wait_for("CALL_ESTABLISHED", 90)
        session = await phone_session(gateway, caller.number)
        assert session["phone"]["calledNumber"] == number["number"]
        await gateway.end(session["roomName"])
        await caller.wait_for("CALL_CLOSED", 15)


async def test_phone_endpoints_check_keys_and_bodies(gateway: Gateway) -> None:
    status, plain, _ = await gateway.post(
        "/v1/keys", {"name": "app", "scopes": ["sessions:write", "sessions:read"]}
    )
    assert status == 201, plain
    status, body, _ = await gateway.post(
        "/v1/phone-numbers", {"number": "+15550999", "agentId": "demo"}, key=plain["key"]
    )
    assert status == 403 and body["error"]["code"] == "insufficient_scope", body

    status, browser, _ = await gateway.post(
        "/v1/keys",
        {
            "name": "page",
            "kind": "publishable",
            "agentIds": ["demo"],
            "allowedOrigins": ["https://app.example.com"],
        },
    )
    assert status == 201, browser
    status, body, _ = await gateway.post(
        "/v1/calls",
        {"agentId": "demo", "to": "+15557654321"},
        key=browser["key"],
        headers={"Origin": "https://app.example.com"},
    )
    assert status == 403 and body["error"]["code"] == "wrong_key_type", body

    for bad, code in [
        ({"number": "call me", "agentId": "demo"}, "invalid_request"),
        ({"number": "+15550998", "agentId": "nobody"}, "agent_not_found"),
        ({"number": "+15550998", "agentId": "demo", "allowedAddresses": ["x"]}, "invalid_request"),
        ({"number": "+15550998", "agentId": "demo", "auth": {"username": "u"}}, "invalid_request"),
    ]:
        status, body, _ = await gateway.post("/v1/phone-numbers", bad)
        assert status in (400, 404) and body["error"]["code"] == code, (bad, body)
    status, body = await gateway.get("/v1/phone-numbers")
    assert status == 200 and "+15550998" not in str(body)

    status, body, _ = await gateway.post("/v1/calls", {"agentId": "demo", "to": "+15557654321"})
    assert status == 400 and "outboundTrunk" in body["error"]["message"], body
    status, body, _ = await gateway.post(
        "/v1/calls", {"agentId": "demo", "to": "+15557654321", "outboundTrunk": "ot_missing"}
    )
    assert status == 404 and body["error"]["code"] == "outbound_trunk_not_found", body
    status, body = await gateway.get("/v1/sessions?channel=phone&status=ringing")
    assert status == 200
