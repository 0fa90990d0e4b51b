"""Phone numbers: a ready room per number, one room per call, and LiveKit's SIP state rebuilt
from the database after Redis forgot it."""

from __future__ import annotations

import pytest

from tests.unit.conftest import OWNER
from tests.unit.fakes import FakeLiveKit, FakeSip
from voice_gateway.catalogue import AgentCatalogue
from voice_gateway.config import DEFAULT_CATALOGUE, GatewaySettings
from voice_gateway.services.credentials import CredentialBox, CredentialsUnreadable
from voice_gateway.services.phone_lines import NewNumber, PhoneLines, PhoneNumberExists
from voice_gateway.services.sessions import SessionService
from voice_gateway.store.database import Database
from voice_gateway.store.phone import PhoneNumberStore
from voice_gateway.store.sessions import SessionStore

pytestmark = pytest.mark.unit

CALLER = {"sip.phoneNumber": "+15557770001", "sip.trunkPhoneNumber": "+15550100"}


def lines_for(db: Database, livekit: FakeLiveKit, sip: FakeSip) -> PhoneLines:
    settings = GatewaySettings(livekit_api_secret="s" * 32)
    catalogue = AgentCatalogue.load(DEFAULT_CATALOGUE)
    store = SessionStore(db)
    sessions = SessionService(settings=settings, catalogue=catalogue, store=store, livekit=livekit)
    return PhoneLines(
        settings=settings,
        catalogue=catalogue,
        store=PhoneNumberStore(db),
        session_store=store,
        sessions=sessions,
        livekit=livekit,
        sip=sip,
        box=CredentialBox.from_settings(settings),
    )


def new_number(**kw: object) -> NewNumber:
    values: dict[str, object] = {
        "number": "+15550100",
        "agent_id": "demo",
        "allowed_addresses": ("127.0.0.1/32",),
        "auth_username": "pbx",
        "auth_password": "s3cret-pass",
    }
    values.update(kw)
    return NewNumber(**values)  # type: ignore[arg-type]


async def test_a_number_gets_a_trunk_a_ready_room_and_a_rule_into_it(
    db: Database, livekit: FakeLiveKit
) -> None:
    sip = FakeSip()
    lines = lines_for(db, livekit, sip)
    number = await lines.create(new_number(), actor=OWNER)
    assert number.ready_room in livekit.rooms
    assert livekit.max_participants[number.ready_room] == 1  # one caller per room
    assert sip.rules[number.dispatch_rule_id or ""] == (number.trunk_id, number.ready_room)
    trunk = sip.trunks[number.trunk_id or ""]
    assert trunk.auth_password == "s3cret-pass"  # LiveKit gets it back in clear
    assert number.auth_password_encrypted and "s3cret" not in number.auth_password_encrypted
    with pytest.raises(PhoneNumberExists):
        await lines.create(new_number(), actor=OWNER)


async def test_a_call_takes_the_ready_room_and_the_number_moves_on(
    db: Database, livekit: FakeLiveKit
) -> None:
    sip = FakeSip()
    lines = lines_for(db, livekit, sip)
    number = await lines.create(new_number(), actor=OWNER)
    room = number.ready_room or ""
    attributes = {**CALLER, "sip.callIDFull": "call-1"}
    session = await lines.call_arrived(room, identity="sip_+15557770001", attributes=attributes)
    assert session is not None and session.room_name == room
    assert session.status == "ringing" and session.channel == "phone"
    assert session.phone is not None and session.phone.caller_number == "+15557770001"
    assert ("dispatch_agent", room) in livekit.calls

    moved = await lines.get(number.id)
    assert moved.ready_room not in (None, room) and moved.ready_room in livekit.rooms
    assert sip.rules[number.dispatch_rule_id or ""][1] == moved.ready_room
    # LiveKit retrying the same webhook makes no second session.
    again = await lines.call_arrived(room, identity="sip_+15557770001", attributes=attributes)
    assert again is None


async def test_reconcile_rebuilds_what_redis_forgot_on_the_second_look(
    db: Database, livekit: FakeLiveKit
) -> None:
    sip = FakeSip()
    lines = lines_for(db, livekit, sip)
    number = await lines.create(new_number(), actor=OWNER)
    assert await lines.reconcile() == 0
    sip.forget()
    livekit.rooms.clear()
    # The first pass only notes it: a number being changed right now looks the same.
    assert await lines.reconcile() == 0
    assert await lines.reconcile() == 1
    rebuilt = await lines.get(number.id)
    assert rebuilt.trunk_id in sip.trunks and rebuilt.ready_room in livekit.rooms
    assert sip.rules[rebuilt.dispatch_rule_id or ""] == (rebuilt.trunk_id, rebuilt.ready_room)
    assert sip.trunks[rebuilt.trunk_id or ""].auth_password == "s3cret-pass"
    assert await lines.reconcile() == 0


def test_a_password_sealed_with_another_key_does_not_open() -> None:
    one = CredentialBox.from_settings(GatewaySettings(livekit_api_secret="a" * 32))
    other = CredentialBox.from_settings(GatewaySettings(livekit_api_secret="b" * 32))
    sealed = one.seal("pass-word-1")
    assert one.open(sealed) == "pass-word-1"
    with pytest.raises(CredentialsUnreadable):
        other.open(sealed)
