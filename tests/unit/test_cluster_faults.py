"""What `make chaos` found, fixed one module at a time (the proof on real parts is `make chaos`):
a LiveKit node that dies leaves rooms Redis still lists, which no webhook will ever end and no
DeleteRoom can reach; one such room must not stall the reaper; and a webhook the receiver took
while PostgreSQL was down is not sent twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from livekit import api
from sqlalchemy import select, update

from devstack.ports import free_port
from tests.unit.conftest import OWNER
from tests.unit.fakes import FakeLiveKit
from voice_gateway.catalogue import AgentCatalogue
from voice_gateway.config import DEFAULT_CATALOGUE, GatewaySettings
from voice_gateway.errors import LiveKitUnavailable, StoreUnavailable
from voice_gateway.services.livekit import LiveKitRooms
from voice_gateway.services.outgoing_webhooks import WebhookSender
from voice_gateway.services.reaper import Reaper
from voice_gateway.services.sessions import SessionService
from voice_gateway.store.database import Database, now
from voice_gateway.store.models import EndReason, SessionStatus
from voice_gateway.store.outbox import OutboundEvent, Outbox
from voice_gateway.store.sessions import SessionStore
from voice_gateway.store.tables import outbound_events, sessions

pytestmark = pytest.mark.unit
PROBE_S = 0.05


def reaper_for(
    db: Database, livekit: FakeLiveKit, *, store: SessionStore | None = None, **settings: Any
) -> tuple[Reaper, SessionService]:
    """A reaper and the service it ends sessions through; `store` is what the reaper reads."""
    config = GatewaySettings(room_probe_interval_seconds=PROBE_S, **settings)
    service = SessionService(
        settings=config,
        catalogue=AgentCatalogue.load(DEFAULT_CATALOGUE),
        store=SessionStore(db),
        livekit=livekit,
    )
    reaper = Reaper(
        settings=config, db=db, store=store or SessionStore(db), sessions=service, livekit=livekit
    )
    return reaper, service


async def start(service: SessionService) -> str:
    config = service.resolve_agent("demo", None)
    started = await service.start(
        principal=OWNER, agent_id="demo", user_identity=None, config=config
    )
    return started.record.room_name


async def test_a_room_on_a_dead_node_is_ended_and_recorded(
    db: Database, livekit: FakeLiveKit
) -> None:
    reaper, service = reaper_for(db, livekit)
    lost, fine = await start(service), await start(service)
    livekit.lost.add(lost)  # its node died: Redis still lists the room

    assert await reaper.run_once() == []  # one unanswered probe is not yet a verdict
    await asyncio.sleep(PROBE_S * 2)
    actions = await reaper.run_once()

    assert [(a.room_name, a.reason) for a in actions] == [(lost, EndReason.LIVEKIT_NODE_LOST)]
    record = await service.get(lost)
    assert record.status == SessionStatus.ENDED
    assert record.end_reason == EndReason.LIVEKIT_NODE_LOST
    assert lost not in livekit.rooms  # deleted (placed again on a live node, then deleted)
    assert (await service.get(fine)).status == SessionStatus.ACTIVE
    await service.aclose()


async def test_a_room_whose_node_answers_again_is_left_alone(
    db: Database, livekit: FakeLiveKit
) -> None:
    reaper, service = reaper_for(db, livekit)
    room = await start(service)
    livekit.lost.add(room)
    await reaper.run_once()
    livekit.lost.discard(room)  # a slow answer, not a dead node
    await asyncio.sleep(PROBE_S * 2)
    await reaper.run_once()
    await asyncio.sleep(PROBE_S * 2)
    assert await reaper.run_once() == []
    assert (await service.get(room)).status == SessionStatus.ACTIVE
    await service.aclose()


class OneRoomFails(FakeLiveKit):
    def __init__(self) -> None:
        super().__init__()
        self.broken: set[str] = set()

    async def has_agent(self, room: str) -> bool:
        if room in self.broken:
            raise LiveKitUnavailable("LiveKit did not answer when asked to list participants")
        return await super().has_agent(room)


async def test_one_room_livekit_cannot_answer_for_does_not_stop_the_pass(db: Database) -> None:
    livekit = OneRoomFails()
    reaper, service = reaper_for(db, livekit, agent_join_timeout_seconds=5)
    broken, agentless = await start(service), await start(service)
    livekit.broken.add(broken)
    async with db.connect() as conn:  # both agents joined a minute ago, and are gone
        minute_ago = now() - timedelta(seconds=60)
        await conn.execute(
            update(sessions).values(started_at=minute_ago, agent_joined_at=minute_ago)
        )
    actions = await reaper.run_once()
    assert [(a.room_name, a.reason) for a in actions] == [(agentless, EndReason.AGENT_LEFT)]
    assert (await service.get(broken)).status == SessionStatus.ACTIVE
    await service.aclose()


class DeadNodeApi:
    """LiveKit's RoomService as it answers for a room whose node died: listed (Redis), DeleteRoom
    routed to the dead node, until CreateRoom places the room on a live node."""

    def __init__(self) -> None:
        self.placed_again = False
        self.calls: list[str] = []
        self.room = self

    async def delete_room(self, request: api.DeleteRoomRequest) -> None:
        self.calls.append("delete")
        if not self.placed_again:
            raise api.TwirpError("internal", "could not route to node", status=500)

    async def create_room(self, request: api.CreateRoomRequest) -> None:
        self.calls.append("create")
        self.placed_again = True

    async def list_rooms(self, request: api.ListRoomsRequest) -> api.ListRoomsResponse:
        return api.ListRoomsResponse(rooms=[api.Room(name=n) for n in request.names])


async def test_deleting_a_room_of_a_dead_node_places_it_again_then_deletes_it() -> None:
    rooms = LiveKitRooms.__new__(LiveKitRooms)
    rooms._settings = GatewaySettings()
    dead = DeadNodeApi()
    rooms._api = rooms._rooms_api = dead  # type: ignore[assignment]
    assert await rooms.delete_room("vgw-demo-lost") is True
    assert dead.calls == ["delete", "create", "delete"]


class FlakyOutbox:
    """One due event; the store goes down right after the receiver took it."""

    def __init__(self, event: OutboundEvent) -> None:
        self.event = event
        self.store_up = True
        self.delivered_ids: list[str] = []

    async def claim_due(self, **_: object) -> list[OutboundEvent]:
        if not self.store_up:
            raise StoreUnavailable("session store unavailable (OSError)")
        return [] if self.delivered_ids else [self.event]

    async def delivered(self, event_id: str) -> None:
        if not self.store_up:
            raise StoreUnavailable("session store unavailable (OSError)")
        self.delivered_ids.append(event_id)

    async def failed(self, event_id: str, **_: object) -> None:
        raise AssertionError("the delivery succeeded")


class NoStore:
    async def get_by_id(self, session_id: str) -> None:
        return None


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[tuple[str, list[str]]]:
    got: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        got.append(request.headers["X-Voicegw-Delivery"])
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/hook", got
    await runner.cleanup()


async def test_a_webhook_taken_while_the_store_was_down_is_sent_once(
    receiver: tuple[str, list[str]],
) -> None:
    url, got = receiver
    event = OutboundEvent(
        id="evt_1", event_type="session.ended", session_id="ses_1", url=url, created_at=now(),
        attempts=0,
    )  # fmt: skip
    outbox = FlakyOutbox(event)
    settings = GatewaySettings(webhook_poll_seconds=0.02)
    async with aiohttp.ClientSession() as http:
        sender = WebhookSender(settings, outbox, NoStore(), http)  # type: ignore[arg-type]
        real_deliver = sender._deliver

        async def deliver_then_store_dies(e: OutboundEvent) -> None:
            await real_deliver(e)
            outbox.store_up = False  # PostgreSQL went down after the receiver answered

        sender._deliver = deliver_then_store_dies  # type: ignore[method-assign]
        task = asyncio.create_task(sender.run_forever())
        await asyncio.sleep(0.3)
        outbox.store_up = True
        outbox.event = event  # its claim lapsed: the row is due again unless recorded first
        await asyncio.sleep(0.3)
        task.cancel()
    assert got == ["evt_1"]
    assert outbox.delivered_ids == ["evt_1"]


async def test_events_a_dead_replica_never_enqueued_are_enqueued_once(
    db: Database, livekit: FakeLiveKit
) -> None:
    """The replica died between the session's write and its event's: the leader's sweep enqueues
    session.started (and session.ended) once, after a grace that lets a live replica do it."""
    _, service = reaper_for(db, livekit)  # no events: as if the replica died before enqueuing
    settings = GatewaySettings(webhook_urls=["http://127.0.0.1:1/hook"])
    sender = WebhookSender(settings, Outbox(db), SessionStore(db), None)  # type: ignore[arg-type]
    old, fresh = await start(service), await start(service)
    async with db.connect() as conn:
        await conn.execute(
            update(sessions)
            .where(sessions.c.room_name == old)
            .values(started_at=now() - timedelta(seconds=60))
        )
    assert await sender.enqueue_unannounced() == 1
    assert await sender.enqueue_unannounced() == 0
    await service.end(old, reason=EndReason.CLIENT_ENDED)
    async with db.connect() as conn:
        await conn.execute(
            update(sessions)
            .where(sessions.c.room_name == old)
            .values(ended_at=now() - timedelta(seconds=60))
        )
        rows = (await conn.execute(select(outbound_events.c.event_type))).scalars().all()
    assert rows == ["session.started"]
    assert await sender.enqueue_unannounced() == 1
    async with db.connect() as conn:
        rows = (await conn.execute(select(outbound_events.c.event_type))).scalars().all()
    assert sorted(rows) == ["session.ended", "session.started"]
    assert fresh  # started within the grace: left to its replica
    await service.aclose()


class LiveReadEarly(SessionStore):
    """The reaper's read of live sessions taken just before a call's session was written."""

    async def live(self) -> list[Any]:  # type: ignore[override]
        return []


async def test_a_session_that_began_during_a_pass_is_not_closed_as_ended(db: Database) -> None:
    """A phone number's waiting room taken by a call between the reaper's reads: LiveKit lists
    the room, the early read of live sessions did not have it, the record is live. It was closed
    as 'session_already_ended' and the caller heard 486; it must wait for the next pass."""
    livekit = FakeLiveKit()
    reaper, service = reaper_for(db, livekit, store=LiveReadEarly(db))
    room = await start(service)
    assert [a for a in await reaper.plan() if a.room_name == room] == []
    # Once its record has ended, a room LiveKit still runs is closed as before.
    listed = livekit.rooms[room]
    await service.end(room, reason=EndReason.CLIENT_ENDED)
    livekit.rooms[room] = listed
    assert [(a.room_name, a.reason) for a in await reaper.plan()] == [
        (room, "session_already_ended")
    ]
    await service.aclose()
