"""Settling a session's setup stamps: once settle returns they are written, even when the batch
writer had already taken them and its write was still on its way (seen in CI on PostgreSQL: a
session read right after settle had no dispatch stamp)."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from voice_gateway.errors import StoreUnavailable
from voice_gateway.services.start_stamps import StampWriter
from voice_gateway.store.database import now
from voice_gateway.store.models import StartStamps
from voice_gateway.store.sessions import SessionStore

pytestmark = pytest.mark.unit


class SlowStore:
    """write_stamps waits for `release`; the first `failures` writes fail."""

    def __init__(self, failures: int = 0) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.written: dict[str, StartStamps] = {}
        self.failures = failures

    async def write_stamps(self, items: list[tuple[str, StartStamps]]) -> None:
        self.started.set()
        await self.release.wait()
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("the store is down")
        self.written.update(items)


def stamps() -> StartStamps:
    at = now()
    return StartStamps(room_created_at=at, dispatched_at=at)


@pytest.mark.parametrize("failures", [0, 1])
async def test_settle_waits_for_the_batch_that_took_its_stamps(failures: int) -> None:
    store = SlowStore(failures)
    writer = StampWriter(cast(SessionStore, store), window_seconds=0)
    writer.add("ses_a", stamps())
    await store.started.wait()  # the batch writer took the stamps; its write is under way
    settling = asyncio.create_task(writer.settle("ses_a"))
    await asyncio.sleep(0.01)
    assert not settling.done()
    store.release.set()
    await settling
    assert "ses_a" in store.written
    await writer.aclose()
