"""Issue 13: a start commits one store transaction before LiveKit is called (row, rate-limit hit,
live-cap check, audit row, outgoing event), and a LiveKit failure is its only update."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import event, select

from tests.unit.conftest import OWNER
from tests.unit.fakes import FakeLiveKit
from voice_gateway.catalogue import AgentCatalogue
from voice_gateway.config import DEFAULT_CATALOGUE, GatewaySettings
from voice_gateway.errors import LiveKitUnavailable, RateLimited
from voice_gateway.services import idempotency
from voice_gateway.services.audit import SessionAudit
from voice_gateway.services.keys import KeyLimits
from voice_gateway.services.limits import StartLimiter
from voice_gateway.services.outgoing_webhooks import WebhookSender
from voice_gateway.services.sessions import NewSession, SessionService
from voice_gateway.store.audit import AuditStore
from voice_gateway.store.database import Database
from voice_gateway.store.limits import RateCounterStore
from voice_gateway.store.models import Channel, SessionStatus
from voice_gateway.store.outbox import Outbox
from voice_gateway.store.sessions import SessionStore
from voice_gateway.store.tables import audit_events, outbound_events, rate_limit_counters

pytestmark = pytest.mark.unit

WRITES = ("INSERT", "UPDATE", "DELETE")


@pytest_asyncio.fixture(loop_scope="session")
async def full(db: Database, livekit: FakeLiveKit) -> AsyncIterator[SessionService]:
    """A service with everything a start writes: audit, rate limiter, outgoing webhooks."""
    settings = GatewaySettings(webhook_urls=["http://127.0.0.1:9/hook"])
    store = SessionStore(db)
    async with aiohttp.ClientSession() as http:
        s = SessionService(
            settings=settings,
            catalogue=AgentCatalogue.load(DEFAULT_CATALOGUE),
            store=store,
            livekit=livekit,
            events=WebhookSender(settings, Outbox(db), store, http),
            limiter=StartLimiter(RateCounterStore(db)),
            audit=SessionAudit(AuditStore(db)),
        )
        yield s
        await s.aclose()


@contextmanager
def write_transactions(db: Database) -> Iterator[list[set[str]]]:
    """The statements of each transaction that wrote something, as their verbs."""
    txns: list[list[str]] = []

    def on_begin(_conn: Any) -> None:
        txns.append([])

    def on_execute(_conn: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        if txns:
            txns[-1].append(statement.lstrip().split(None, 1)[0].upper())

    for engine in db.sync_engines:
        event.listen(engine, "begin", on_begin)
        event.listen(engine, "before_cursor_execute", on_execute)
    out: list[set[str]] = []
    try:
        yield out
    finally:
        for engine in db.sync_engines:
            event.remove(engine, "begin", on_begin)
            event.remove(engine, "before_cursor_execute", on_execute)
        out.extend({verb for verb in t if verb in WRITES} for t in txns)
        out[:] = [t for t in out if t]


LIMITED = replace(OWNER, limits=KeyLimits(rate_limit_per_minute=2, max_concurrent_sessions=50))


async def start(service: SessionService, principal: Any = LIMITED) -> Any:
    async with service.rate_counted(principal) as rate:
        config = service.resolve_agent("demo", None)
        return await service.start(
            principal=principal, agent_id="demo", user_identity=None, config=config, rate=rate
        )


async def test_a_start_writes_once_with_its_audit_row_and_event(
    full: SessionService, db: Database
) -> None:
    with write_transactions(db) as writes:
        started = await start(full)
    record = started.record
    assert len(writes) == 1, writes  # rate hit, live-cap check, row, audit, outbox: one commit
    assert record.status == SessionStatus.ACTIVE and record.started_at is not None
    async with db.connect() as conn:
        audits = (
            await conn.execute(
                select(audit_events.c.event).where(audit_events.c.session_id == record.id)
            )
        ).all()
        events = (
            await conn.execute(
                select(outbound_events.c.event_type).where(
                    outbound_events.c.session_id == record.id
                )
            )
        ).all()
        hits = (
            await conn.execute(
                select(rate_limit_counters.c.hits).where(
                    rate_limit_counters.c.key_id == LIMITED.key_id
                )
            )
        ).scalar_one()
    assert [a.event for a in audits] == ["session.started"]
    assert [e.event_type for e in events] == ["session.started"]
    assert hits == 1
    await full.stamps.flush()
    stored = await full.get(record.room_name)
    assert stored.room_created_at is not None and stored.dispatched_at is not None
    assert stored.room_created_at <= stored.dispatched_at


async def test_over_the_rate_a_start_answers_429_and_writes_no_session(
    full: SessionService, db: Database, livekit: FakeLiveKit
) -> None:
    await start(full)
    await start(full)
    rooms = len(livekit.rooms)
    with pytest.raises(RateLimited) as refused:
        await start(full)
    assert int(refused.value.headers["Retry-After"]) >= 1
    assert len(livekit.rooms) == rooms  # nothing was created in LiveKit
    live = await full._store.live()  # noqa: SLF001 - the store is what the test inspects
    assert len(live) == 2


async def test_starts_racing_for_a_keys_last_slots_get_exactly_its_cap(
    full: SessionService, db: Database, livekit: FakeLiveKit
) -> None:
    """Twenty starts at once on a key allowed five live sessions: five open, fifteen are told
    429, and the store and LiveKit hold five. On SQLite the start's transaction runs in the
    writer thread in one piece; the cap must hold as it did statement by statement."""
    capped = replace(OWNER, limits=KeyLimits(rate_limit_per_minute=1000, max_concurrent_sessions=5))
    results = await asyncio.gather(
        *(start(full, capped) for _ in range(20)), return_exceptions=True
    )
    opened = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert (len(opened), len(refused)) == (5, 15), [r for r in results if isinstance(r, Exception)]
    live = await full._store.live()  # noqa: SLF001 - the store is what the test inspects
    assert sorted(r.id for r in live) == sorted(o.record.id for o in opened)
    assert len(livekit.rooms) == 5


async def test_a_refused_request_still_counts_against_the_rate(full: SessionService) -> None:
    """A request that fails before its start's transaction (here: an unknown agent) is counted on
    its way out, so a key cannot probe without limit."""
    for _ in range(2):
        with pytest.raises(Exception) as first:
            async with full.rate_counted(LIMITED):
                full.resolve_agent("no-such-agent", None)
        assert type(first.value).__name__ == "AgentNotFound"
    with pytest.raises(RateLimited):
        async with full.rate_counted(LIMITED):
            full.resolve_agent("no-such-agent", None)


async def test_a_failed_room_creation_is_the_starts_only_update(
    full: SessionService, db: Database, livekit: FakeLiveKit
) -> None:
    livekit.fail_on.add("create the room")
    with write_transactions(db) as writes, pytest.raises(LiveKitUnavailable):
        await start(full, OWNER)
    assert len(writes) == 2  # the open, then the failure
    async with db.connect() as conn:
        failed = (
            await conn.execute(select(audit_events).order_by(audit_events.c.id.desc()).limit(1))
        ).one()
        pending = (
            await conn.execute(
                select(outbound_events).where(outbound_events.c.session_id == failed.session_id)
            )
        ).all()
    record = await full._store.get_by_id(failed.session_id)  # noqa: SLF001
    assert record is not None
    assert record.status == SessionStatus.FAILED and record.end_reason == "livekit_unavailable"
    assert record.started_at is None and record.idempotency_key is None
    assert failed.event == "session.ended" and failed.details["status"] == "failed"
    assert pending == []  # its session.started event was taken back before anyone was told
    assert not livekit.rooms.get(record.room_name)


async def test_a_chat_start_is_one_write_with_no_livekit_call_and_its_retry_does_not_wait(
    full: SessionService, db: Database, livekit: FakeLiveKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chat has no room and no dispatch: its one write is its whole start, so a retry with its
    Idempotency-Key answers the same session rather than waiting for a dispatch stamp that never
    comes (and, after the wait, refusing the retry as still in progress)."""
    monkeypatch.setattr(idempotency, "WAIT_FOR_FIRST_SECONDS", 0.5)  # a wrong wait fails fast
    calls = len(livekit.calls)
    async with full.rate_counted(LIMITED) as rate:
        spec = NewSession(
            agent_id="demo",
            identity="reader",
            config=full.resolve_agent("demo", None),
            api_key_id=LIMITED.key_id,
            live_cap=LIMITED.limits.max_concurrent_sessions,
            channel=Channel.CHAT,
            idempotency_key="chat-retry-1",
            fingerprint="same-request",
            rate=rate,
        )
        with write_transactions(db) as writes:
            record, replayed = await full.open_once(spec)
    assert len(writes) == 1, writes  # rate hit, row, audit, outbox: one commit
    assert not replayed and record.room_name == record.id
    assert record.status == SessionStatus.ACTIVE and record.started_at is not None
    assert record.last_activity_at == record.created_at
    assert len(livekit.calls) == calls  # no room, no dispatch
    again, replayed = await full.open_once(spec)
    assert replayed and again.id == record.id
    assert again.last_activity_at is not None and again.dispatched_at is None
