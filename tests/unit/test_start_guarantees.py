"""Start that guarantees an agent, one service at a time: capacity pre-flight, idempotent starts,
the job claim, waiting for the agent, and the dispatch watch, on both stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from sqlalchemy import update

from tests.unit.conftest import OWNER
from tests.unit.fakes import FakeLiveKit
from voice_gateway.catalogue import AgentCatalogue
from voice_gateway.config import DEFAULT_CATALOGUE, GatewaySettings
from voice_gateway.errors import (
    AgentTimeout,
    IdempotencyConflict,
    JobNotWanted,
    LiveKitUnavailable,
    NoAgentAvailable,
)
from voice_gateway.services.capacity import AgentCapacity
from voice_gateway.services.dispatch_watch import Next
from voice_gateway.services.idempotency import fingerprint
from voice_gateway.services.sessions import SessionService, StartedSession
from voice_gateway.store.database import Database, now
from voice_gateway.store.models import WorkerState
from voice_gateway.store.sessions import JobClaim, SessionQuery, SessionStore
from voice_gateway.store.tables import agent_workers, sessions
from voice_gateway.store.workers import WorkerStore

pytestmark = pytest.mark.unit

CATALOGUE = AgentCatalogue.load(DEFAULT_CATALOGUE)


def replica(db: Database, livekit: FakeLiveKit, **settings: object) -> SessionService:
    """One gateway replica's session service; several may share a database."""
    config = GatewaySettings(**{"dispatch_assign_timeout_seconds": 600, **settings})  # type: ignore[arg-type]
    return SessionService(
        settings=config,
        catalogue=CATALOGUE,
        store=SessionStore(db),
        livekit=livekit,
        capacity=AgentCapacity(config, WorkerStore(db)),
    )


@pytest_asyncio.fixture(loop_scope="session")
async def gateway(db: Database, livekit: FakeLiveKit) -> AsyncIterator[SessionService]:
    s = replica(db, livekit, wait_for_agent_timeout_seconds=1.0)
    yield s
    await s.aclose()


async def a_worker(db: Database, *, live: int = 0, draining: bool = False) -> None:
    await WorkerStore(db).report(
        WorkerState(
            worker_id="AW_test",
            agent_name="voice-agent",
            live_sessions=live,
            max_sessions=2,
            draining=draining,
        )
    )


async def start(service: SessionService, **kw: object) -> StartedSession:
    config = service.resolve_agent("demo", kw.pop("overrides", None))  # type: ignore[arg-type]
    started = await service.start(
        principal=OWNER,
        agent_id="demo",
        user_identity=kw.pop("identity", None),
        config=config,
        **kw,
    )  # type: ignore[arg-type]
    # The dispatch stamp is written a few ms after the answer (StampWriter); the other replicas
    # of these tests read the row at once.
    await service.stamps.flush()
    return started


@pytest.mark.parametrize(
    ("live", "draining"), [(None, False), (2, False), (0, True)], ids=["none", "full", "draining"]
)
async def test_no_free_worker_refuses_before_any_room_and_leaves_a_failed_record(
    gateway: SessionService, db: Database, livekit: FakeLiveKit, live: int | None, draining: bool
) -> None:
    if live is not None:
        await a_worker(db, live=live, draining=draining)
    with pytest.raises(NoAgentAvailable) as refused:
        await start(gateway)
    assert refused.value.headers["Retry-After"] == "5"
    assert livekit.calls == []
    [record] = await SessionStore(db).query(SessionQuery(limit=None))
    assert (record.status, record.end_reason) == ("failed", "no_agent_available")


async def test_a_stale_report_does_not_count(db: Database, livekit: FakeLiveKit) -> None:
    service = replica(db, livekit, worker_report_ttl_seconds=0.05)
    await a_worker(db)
    await asyncio.sleep(0.1)
    with pytest.raises(NoAgentAvailable, match="has reported in the last"):
        await start(service)
    await service.aclose()


async def test_same_key_same_request_is_the_same_session_with_a_fresh_token(
    gateway: SessionService, db: Database, livekit: FakeLiveKit
) -> None:
    await a_worker(db)
    first = await start(gateway, idempotency_key="k-1", identity="caller")
    again = await start(gateway, idempotency_key="k-1", identity="caller")
    assert again.replayed and not first.replayed
    assert again.record.id == first.record.id
    assert (again.record.room_name, again.record.user_identity) == (
        first.record.room_name,
        "caller",
    )
    assert [c for c, _ in livekit.calls].count("create_room") == 1
    with pytest.raises(IdempotencyConflict):
        await start(gateway, idempotency_key="k-1", identity="someone-else")


async def test_concurrent_retries_with_one_key_make_one_room(
    gateway: SessionService, db: Database, livekit: FakeLiveKit
) -> None:
    await a_worker(db)
    results = await asyncio.gather(*(start(gateway, idempotency_key="burst") for _ in range(4)))
    assert len({r.record.room_name for r in results}) == 1
    assert [c for c, _ in livekit.calls].count("create_room") == 1


async def test_a_failed_start_lets_go_of_its_key(
    gateway: SessionService, db: Database, livekit: FakeLiveKit
) -> None:
    await a_worker(db)
    livekit.fail_on.add("create the room")
    with pytest.raises(LiveKitUnavailable):
        await start(gateway, idempotency_key="k-2")
    livekit.fail_on.clear()
    retried = await start(gateway, idempotency_key="k-2")
    assert not retried.replayed and retried.record.status == "active"


async def test_an_expired_key_starts_a_new_session(db: Database, livekit: FakeLiveKit) -> None:
    await a_worker(db)
    service = replica(db, livekit, idempotency_window_seconds=60)
    first = await start(service, idempotency_key="old")
    async with db.connect() as conn:
        await conn.execute(
            update(sessions)
            .where(sessions.c.id == first.record.id)
            .values(created_at=first.record.created_at - timedelta(seconds=61))
        )
    second = await start(service, idempotency_key="old")
    assert second.record.id != first.record.id and not second.replayed
    await service.aclose()


async def test_one_job_per_dispatch_and_none_after_the_end(
    gateway: SessionService, db: Database
) -> None:
    await a_worker(db)
    started = await start(gateway)
    room, sid = started.record.room_name, started.record.id

    def claim(job: str, attempt: int = 1) -> JobClaim:
        return JobClaim(session_id=sid, attempt=attempt, job_id=job, worker_id="AW_x", at=now())

    claimed = await gateway.claim_job(room, claim("AJ_1"))
    assert claimed.agent_job_id == "AJ_1" and claimed.job_assigned_at is not None
    assert (await gateway.claim_job(room, claim("AJ_1"))).agent_job_id == "AJ_1"  # a resend
    with pytest.raises(JobNotWanted):
        await gateway.claim_job(room, claim("AJ_2"))
    with pytest.raises(JobNotWanted):
        await gateway.claim_job(room, claim("AJ_3", attempt=2))
    await gateway.end(room)
    with pytest.raises(JobNotWanted):
        await gateway.claim_job(room, claim("AJ_1"))


async def test_wait_for_agent_answers_when_the_agent_joins(
    gateway: SessionService, db: Database
) -> None:
    await a_worker(db)
    waiting = asyncio.create_task(start(gateway, wait_for_agent=True))
    await asyncio.sleep(0.3)  # the session is live and its start waits
    [live] = await SessionStore(db).live()
    assert not waiting.done()
    await gateway.participant_joined(live.room_name, who="agent", at=now())
    started = await asyncio.wait_for(waiting, 2)
    assert started.record.agent_joined_at is not None


async def test_wait_for_agent_times_out_and_leaves_nothing(
    gateway: SessionService, db: Database, livekit: FakeLiveKit
) -> None:
    await a_worker(db)
    with pytest.raises(AgentTimeout, match=r"within 1 s"):  # capped at the gateway's setting
        await start(
            gateway, wait_for_agent=True, wait_for_agent_seconds=100, idempotency_key="k-wait"
        )
    [record] = await SessionStore(db).query(SessionQuery(limit=None))
    assert (record.status, record.end_reason) == ("failed", "agent_never_joined")
    assert livekit.rooms == {}
    assert record.idempotency_key is None  # a retry may start afresh


async def test_the_watch_redispatches_once_then_gives_up_and_deletes_the_room(
    gateway: SessionService, db: Database, livekit: FakeLiveKit
) -> None:
    await a_worker(db)
    started = await start(gateway)
    room, sid = started.record.room_name, started.record.id
    other = replica(db, livekit, dispatch_assign_timeout_seconds=0.2)  # e.g. the reaper's leader
    assert (await other.watch.check(sid)).next == Next.WAIT
    await asyncio.sleep(0.25)
    assert (await other.watch.check(sid)).next == Next.WAIT  # no worker said it has room since
    assert (await gateway.get(room)).dispatch_attempts == 1

    await a_worker(db)  # a worker (a restarted one, say) reports a free slot
    await other.watch.check(sid)
    record = await gateway.get(room)
    assert record.dispatch_attempts == 2 and record.redispatched_at is not None
    assert ("withdraw_dispatches", room) in livekit.calls
    # The first dispatch came with the room; the second is its own call.
    assert room in livekit.room_agents
    assert [c for c, r in livekit.calls if r == room].count("dispatch_agent") == 1
    with pytest.raises(JobNotWanted):  # the first dispatch's job, late: turned away
        await gateway.claim_job(
            room, JobClaim(session_id=sid, attempt=1, job_id="AJ_late", worker_id="w", at=now())
        )

    await asyncio.sleep(0.25)
    assert (await other.watch.check(sid)).next == Next.DONE
    record = await gateway.get(room)
    assert (record.status, record.end_reason) == ("failed", "agent_never_joined")
    assert room not in livekit.rooms
    await other.aclose()


async def test_the_watch_leaves_a_session_whose_agent_is_in_the_room(
    gateway: SessionService, db: Database, livekit: FakeLiveKit
) -> None:
    await a_worker(db)
    started = await start(gateway)
    livekit.agents.add(started.record.room_name)  # joined, but the webhook has not come yet
    other = replica(db, livekit, dispatch_assign_timeout_seconds=0.05)
    await asyncio.sleep(0.1)
    await a_worker(db)
    assert (await other.watch.check(started.record.id)).next == Next.DONE
    record = await gateway.get(started.record.room_name)
    assert record.dispatch_attempts == 1 and record.agent_joined_at is not None
    await other.aclose()


async def test_with_no_worker_since_the_dispatch_the_watch_gives_up_at_the_join_timeout(
    gateway: SessionService, db: Database, livekit: FakeLiveKit
) -> None:
    await a_worker(db)
    started = await start(gateway)
    other = replica(db, livekit, dispatch_assign_timeout_seconds=0.05, agent_join_timeout_seconds=5)
    await asyncio.sleep(0.1)
    assert (await other.watch.check(started.record.id)).next == Next.WAIT
    dispatched = started.record.created_at - timedelta(seconds=5)
    async with db.connect() as conn:  # five seconds later, and no worker has reported since
        await conn.execute(
            update(sessions)
            .where(sessions.c.id == started.record.id)
            .values(dispatched_at=dispatched)
        )
        await conn.execute(
            update(agent_workers).values(last_seen_at=dispatched - timedelta(seconds=1))
        )
    assert (await other.watch.check(started.record.id)).next == Next.DONE
    record = await gateway.get(started.record.room_name)
    assert (record.status, record.end_reason, record.dispatch_attempts) == (
        "failed",
        "agent_never_joined",
        1,
    )
    assert started.record.room_name not in livekit.rooms
    await other.aclose()


async def test_a_job_livekit_assigned_but_slow_to_start_is_waited_for_not_replaced(
    gateway: SessionService, db: Database, livekit: FakeLiveKit
) -> None:
    await a_worker(db)
    started = await start(gateway)
    livekit.taken.add(started.record.room_name)  # a loaded machine: its process is still starting
    other = replica(db, livekit, dispatch_assign_timeout_seconds=0.05)
    await asyncio.sleep(0.1)
    await a_worker(db)
    verdict = await other.watch.check(started.record.id)
    assert verdict.next == Next.WAIT and verdict.until is not None
    assert verdict.until - now() > timedelta(seconds=20)  # until the join timeout
    assert (await gateway.get(started.record.room_name)).dispatch_attempts == 1
    await other.aclose()


async def test_a_start_may_ask_to_wait_less_than_the_gateway_allows(
    gateway: SessionService, db: Database
) -> None:
    await a_worker(db)
    with pytest.raises(AgentTimeout, match=r"within 0.2 s"):
        await start(gateway, wait_for_agent=True, wait_for_agent_seconds=0.2)


async def test_wait_for_agent_sees_the_agent_in_livekit_before_its_webhook(
    gateway: SessionService, db: Database, livekit: FakeLiveKit
) -> None:
    await a_worker(db)
    waiting = asyncio.create_task(start(gateway, wait_for_agent=True))
    await asyncio.sleep(0.3)
    [live] = await SessionStore(db).live()
    assert not waiting.done()
    livekit.agents.add(live.room_name)  # joined; LiveKit's webhook waits for its media
    started = await asyncio.wait_for(waiting, 2)
    assert started.record.agent_joined_at is not None


async def test_a_start_its_gateway_never_completed_lets_go_of_its_key(
    gateway: SessionService, db: Database, livekit: FakeLiveKit
) -> None:
    """The replica died between its writes; the reaper ends the session (reaped), and the
    client's retry with the same key starts afresh instead of getting a dead session."""
    await a_worker(db)
    config = gateway.resolve_agent("demo", None)
    await SessionStore(db).create(
        session_id="ses_half",
        room_name="vgw-demo-half",
        agent_id="demo",
        user_identity="caller",
        api_key_id=OWNER.key_id,
        agent_config=config.model_dump(by_alias=True, mode="json"),
        max_duration_seconds=60,
        idempotency_key="k-half",
        request_fingerprint=fingerprint(agent_id="demo", user_identity="caller", config=config),
    )
    await gateway.end("vgw-demo-half", reason="reaped")
    retried = await start(gateway, idempotency_key="k-half", identity="caller")
    assert retried.record.id != "ses_half" and not retried.replayed
