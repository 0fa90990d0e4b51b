"""Who may call a number: its credentials and its allowed addresses; and numbers survive a Redis
that restarted empty, because the gateway rebuilds LiveKit's SIP state from its database."""

from __future__ import annotations

import asyncio

import pytest

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


async def test_numbers_still_work_after_redis_restarts_empty(
    gateway: Gateway, stack: Stack
) -> None:
    number = await add_number(gateway)
    assert stack.redis is not None
    stack.redis.restart()
    # Nothing of the SIP side is left in Redis; the gateway rebuilds it on its next pass.
    async with phone() as caller:
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            await caller.dial(f"sip:{number['number']}@{sip_address(stack)}")
            outcome = await caller.wait_for_any(("CALL_ESTABLISHED", "CALL_CLOSED"), 45)
            if outcome["type"] == "CALL_ESTABLISHED":
                break
            assert asyncio.get_running_loop().time() < deadline, "the number never came back"
            caller.events.clear()
            await asyncio.sleep(1)
        session = await phone_session(gateway, caller.number)
        assert session["phone"]["calledNumber"] == number["number"]
        await gateway.end(session["roomName"])
        await caller.wait_for("CALL_CLOSED", 15)
