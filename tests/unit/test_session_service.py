"""The order of store writes and LiveKit calls: whatever fails, nothing is left half-made."""

from __future__ import annotations

import pytest

from tests.unit.conftest import OWNER
from tests.unit.fakes import FakeLiveKit
from voice_common.agent_config import DispatchMetadata
from voice_gateway.catalogue import AgentCatalogue
from voice_gateway.config import DEFAULT_CATALOGUE, GatewaySettings
from voice_gateway.errors import AgentNotFound, InvalidRequest, LiveKitUnavailable
from voice_gateway.services.audit import SessionAudit
from voice_gateway.services.sessions import NewSession, SessionService
from voice_gateway.store.audit import AuditQuery, AuditStore
from voice_gateway.store.database import Database
from voice_gateway.store.models import CallDirection, Channel, PhoneLeg
from voice_gateway.store.sessions import SessionStore

pytestmark = pytest.mark.unit


async def start(service: SessionService) -> str:
    config = service.resolve_agent("demo", None)
    started = await service.start(
        principal=OWNER, agent_id="demo", user_identity=None, config=config
    )
    return started.record.room_name


async def test_a_start_creates_the_room_with_its_agent_dispatch_in_one_call(
    service: SessionService, livekit: FakeLiveKit
) -> None:
    room = await start(service)
    assert [call for call, r in livekit.calls if r == room] == ["create_room"]
    agent = livekit.room_agents[room]
    await service.stamps.settle((await service.get(room)).id)
    record = await service.get(room)
    metadata = DispatchMetadata.model_validate_json(agent.metadata)
    assert agent.agent_name == GatewaySettings().agent_name
    assert (metadata.session_id, metadata.attempt) == (record.id, 1)
    assert record.dispatched_at is not None and record.dispatched_at == record.room_created_at


async def test_an_inbound_calls_failed_dispatch_deletes_its_room_and_fails_the_session(
    service: SessionService, livekit: FakeLiveKit
) -> None:
    """An inbound call's room exists before its session, so its agent gets a dispatch of its
    own; when that fails, the room goes (the SIP service hangs up) and the row says why."""
    room = "vgw-phone-ready-room"
    await livekit.create_room(room, metadata={})
    livekit.fail_on.add("dispatch the agent")
    config = service.resolve_agent("demo", None)
    leg = PhoneLeg(
        direction=CallDirection.INBOUND, caller_number="+15550001", called_number="+15550002"
    )
    with pytest.raises(LiveKitUnavailable):
        await service.open(
            NewSession(
                agent_id="demo",
                identity="sip_caller",
                config=config,
                channel=Channel.PHONE,
                phone=leg,
                room_name=room,
            )
        )
    assert [call for call, r in livekit.calls if r == room] == [
        "create_room",
        "dispatch_agent",
        "delete_room",
    ]
    assert livekit.rooms == {}
    record = await service.get(room)
    assert (record.status, record.end_reason) == ("failed", "dispatch_failed")


async def test_a_failed_room_creation_fails_the_session_and_deletes_what_livekit_made(
    service: SessionService, livekit: FakeLiveKit
) -> None:
    """A timeout may come after LiveKit made the room and its dispatch: the session is failed
    (the agent's job is refused) and the room deleted (an agent already in it leaves)."""
    livekit.fail_on.add("create the room")
    with pytest.raises(LiveKitUnavailable):
        await start(service)
    [(_, room), delete] = livekit.calls
    assert delete == ("delete_room", room)
    record = await service.get(room)
    assert (record.status, record.end_reason) == ("failed", "livekit_unavailable")


async def test_end_is_idempotent_and_keeps_the_first_reason(
    service: SessionService, livekit: FakeLiveKit
) -> None:
    room = await start(service)
    first = await service.end(room)
    again = await service.end(room, reason="ops_ended")
    assert first == again and first.end_reason == "client_ended"
    assert [c for c in livekit.calls if c[0] == "delete_room"] == [("delete_room", room)]


async def test_end_that_cannot_reach_livekit_keeps_the_session_live(
    service: SessionService, livekit: FakeLiveKit
) -> None:
    room = await start(service)
    livekit.fail_on.add("delete the room")
    with pytest.raises(LiveKitUnavailable):
        await service.end(room)
    assert (await service.get(room)).status == "active"


async def test_the_agent_leaving_a_caller_alone_ends_the_session(
    service: SessionService, livekit: FakeLiveKit
) -> None:
    room = await start(service)
    await service.participant_left(room, who="agent")
    record = await service.get(room)
    assert (record.status, record.end_reason) == ("ended", "agent_left")
    assert room not in livekit.rooms


def test_overrides_are_validated_against_the_agent_config(service: SessionService) -> None:
    assert service.resolve_agent("demo", {"greeting": "Hi"}).greeting == "Hi"
    with pytest.raises(InvalidRequest, match=r"agentConfig\.greting"):
        service.resolve_agent("demo", {"greting": "typo"})
    with pytest.raises(AgentNotFound):
        service.resolve_agent("nobody", None)


async def test_the_room_finished_webhook_racing_end_keeps_the_callers_reason(
    service: SessionService, livekit: FakeLiveKit
) -> None:
    """LiveKit may deliver room_finished for a room we delete before our own write lands."""
    room = await start(service)
    delete = livekit.delete_room

    async def delete_then_webhook(name: str) -> bool:
        existed = await delete(name)
        await service.room_finished(name)  # the webhook, handled before end() writes
        return existed

    livekit.delete_room = delete_then_webhook  # type: ignore[method-assign]
    ended = await service.end(room)
    assert (ended.status, ended.end_reason) == ("ended", "client_ended")


async def test_the_room_finished_webhook_racing_end_audits_the_key_that_ended_it(
    db: Database, livekit: FakeLiveKit
) -> None:
    """The webhook closing the session first must not turn the key's /end into an anonymous
    end in the audit trail (seen in CI: session.ended with actorKeyId null)."""
    audit = AuditStore(db)
    service = SessionService(
        settings=GatewaySettings(),
        catalogue=AgentCatalogue.load(DEFAULT_CATALOGUE),
        store=SessionStore(db),
        livekit=livekit,
        audit=SessionAudit(audit),
    )
    try:
        room = await start(service)
        delete = livekit.delete_room

        async def delete_then_webhook(name: str) -> bool:
            existed = await delete(name)
            await service.room_finished(name)
            return existed

        livekit.delete_room = delete_then_webhook  # type: ignore[method-assign]
        ended = await service.end(room, actor=OWNER)
        ends = await audit.query(AuditQuery(events=("session.ended",), session_id=ended.id))
        assert [(e.actor_key_id, (e.details or {}).get("endReason")) for e in ends] == [
            (OWNER.key_id, "client_ended")
        ]
    finally:
        await service.aclose()


async def test_a_failed_delete_leaves_no_pending_reason(
    service: SessionService, livekit: FakeLiveKit
) -> None:
    room = await start(service)
    livekit.fail_on.add("delete the room")
    with pytest.raises(LiveKitUnavailable):
        await service.end(room)
    livekit.fail_on.clear()
    finished = await service.room_finished(room)
    assert finished is not None and finished.end_reason == "room_finished"
