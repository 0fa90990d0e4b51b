"""Per-key limits: the fixed-window arithmetic, and the counters the database keeps for replicas."""

from __future__ import annotations

import pytest

from voice_gateway.errors import RateLimited
from voice_gateway.services.keys import KeyLimits, Principal
from voice_gateway.services.limits import (
    MESSAGE_BUCKET,
    StartLimiter,
    allowance,
    retry_after,
    window_start,
)
from voice_gateway.store.database import Database, now
from voice_gateway.store.limits import LiveCapReached, RateCounterStore
from voice_gateway.store.models import SessionStatus, StartStamps
from voice_gateway.store.sessions import SessionStore

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("at", "window", "start"),
    [(0.0, 60, 0), (59.999, 60, 0), (60.0, 60, 60), (125.5, 60, 120), (7.9, 2, 6), (8.0, 2, 8)],
)
def test_window_start(at: float, window: int, start: int) -> None:
    assert window_start(at, window) == start


@pytest.mark.parametrize(
    ("at", "window", "wait"),
    [(0.0, 60, 60), (59.2, 60, 1), (59.999, 60, 1), (30.5, 60, 30), (7.1, 2, 1), (6.0, 2, 2)],
)
def test_retry_after_is_whole_seconds_to_the_next_window(at: float, window: int, wait: int) -> None:
    assert retry_after(at, window) == wait


@pytest.mark.parametrize(
    ("per_minute", "window", "allowed"),
    [(60, 60, 60), (60, 2, 2), (120, 30, 60), (1, 60, 1), (2, 2, 1), (10, 3600, 600)],
)
def test_allowance_scales_the_rate_to_the_window(
    per_minute: int, window: int, allowed: int
) -> None:
    assert allowance(per_minute, window) == allowed


def principal(key_id: str, limits: KeyLimits) -> Principal:
    scopes = frozenset({"sessions:write"})
    return Principal(key_id, "secret", scopes, frozenset(), frozenset(), limits)


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


async def test_the_rate_limit_answers_429_then_recovers_in_the_next_window(db: Database) -> None:
    clock = Clock(1000.0)
    limiter = StartLimiter(RateCounterStore(db), clock)
    p = principal("key_rl", KeyLimits(rate_limit_per_minute=60, rate_limit_window_seconds=2))
    await limiter.check_rate(p)
    await limiter.check_rate(p)
    clock.at = 1001.4
    with pytest.raises(RateLimited) as caught:
        await limiter.check_rate(p)
    assert caught.value.headers["Retry-After"] == "1"
    clock.at = 1002.0
    await limiter.check_rate(p)


async def test_replicas_share_one_counter(db: Database) -> None:
    """Two limiters on one database stand for two gateway replicas."""
    clock = Clock(5000.0)
    a, b = StartLimiter(RateCounterStore(db), clock), StartLimiter(RateCounterStore(db), clock)
    p = principal("key_shared", KeyLimits(rate_limit_per_minute=2, rate_limit_window_seconds=60))
    await a.check_rate(p)
    await b.check_rate(p)
    with pytest.raises(RateLimited):
        await a.check_rate(p)


async def test_keys_count_separately_and_an_unlimited_key_is_never_counted(db: Database) -> None:
    limiter = StartLimiter(RateCounterStore(db), Clock(9000.0))
    one = KeyLimits(rate_limit_per_minute=1, rate_limit_window_seconds=60)
    await limiter.check_rate(principal("key_a", one))
    await limiter.check_rate(principal("key_b", one))
    for _ in range(5):
        await limiter.check_rate(principal("key_owner", KeyLimits()))


async def test_old_windows_are_deleted(db: Database) -> None:
    store = RateCounterStore(db)
    assert await store.hit("key_gc", "b", 0) == 1
    assert await store.hit("key_gc", "b", 0) == 2
    assert await store.hit("key_gc", "b", 60) == 1
    assert await store.hit("key_gc", "b", 0) == 1  # the old row is gone: counted afresh


async def create(store: SessionStore, n: int, *, cap: int | None) -> str:
    session_id = f"ses_cap_{n}"
    await store.create(
        session_id=session_id,
        room_name=f"room-cap-{n}",
        agent_id="demo",
        user_identity="u",
        api_key_id="key_cap",
        agent_config={},
        max_duration_seconds=60,
        live_cap=cap,
    )
    return session_id


async def test_the_live_cap_counts_starting_ringing_and_active_and_frees_on_end(
    db: Database,
) -> None:
    store = SessionStore(db)
    first = await create(store, 1, cap=3)
    second = await create(store, 2, cap=3)
    await store.mark_started(second, StartStamps(room_created_at=now(), dispatched_at=now()))
    ringing = await create(store, 3, cap=3)
    phone = StartStamps(room_created_at=now(), dispatched_at=now(), ringing=True)
    assert (await store.mark_started(ringing, phone)).status == SessionStatus.RINGING
    with pytest.raises(LiveCapReached):
        await create(store, 4, cap=3)
    assert await store.get_by_room("room-cap-4") is None
    await store.finish(first, status=SessionStatus.ENDED, reason="client_ended")
    await create(store, 4, cap=3)


async def test_messages_have_a_bucket_of_their_own(db: Database) -> None:
    """A chat that used up its messages may still start a call, and the other way round; the
    429 says what was counted."""
    clock = Clock(9000.0)
    limiter = StartLimiter(RateCounterStore(db), clock)
    p = principal("key_chat", KeyLimits(rate_limit_per_minute=1, rate_limit_window_seconds=60))
    await limiter.check_rate(p, MESSAGE_BUCKET)
    with pytest.raises(RateLimited) as caught:
        await limiter.check_rate(p, MESSAGE_BUCKET)
    assert "1 message(s) per 60 s" in caught.value.message
    await limiter.check_rate(p)  # a session start still has its one
    with pytest.raises(RateLimited) as caught:
        await limiter.check_rate(p)
    assert "1 session(s) per 60 s" in caught.value.message
