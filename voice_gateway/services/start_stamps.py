"""The setup stamps a start learns after its one write (room created, agent dispatched), written
in batches off the request path.

A start commits its session row once, before LiveKit is called (SessionService._start_new); the
two stamps it then learns are diagnostics for the setup timeline and the dispatch watch's clock,
not part of any guarantee, so they need not cost the caller a second synchronous write. Every
start of the last few milliseconds shares one transaction. Should the gateway die before a batch
is written, those sessions keep no dispatch stamp, and the reaper's agent-join rule (which needs
none) covers them, as it covers sessions not dispatched by a start.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from voice_gateway.errors import StoreUnavailable
from voice_gateway.store.models import StartStamps
from voice_gateway.store.sessions import SessionStore

log = structlog.get_logger("voice_gateway.start_stamps")

BATCH_WINDOW_SECONDS = 0.02
RETRY_SECONDS = 1.0
MAX_TRIES = 10


class StampWriter:
    def __init__(self, store: SessionStore, window_seconds: float = BATCH_WINDOW_SECONDS) -> None:
        self._store = store
        self._window = window_seconds
        self._pending: dict[str, StartStamps] = {}
        self._task: asyncio.Task[None] | None = None
        # The batch being written now, and the event set once its write has ended either way.
        self._in_flight: tuple[dict[str, StartStamps], asyncio.Event] | None = None

    def add(self, session_id: str, stamps: StartStamps) -> None:
        self._pending[session_id] = stamps
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="start-stamps")

    async def settle(self, session_id: str) -> None:
        """Writes one session's stamps now if they are still pending: a session ended within
        milliseconds of its start keeps its timeline, and its ended record is final. Stamps the
        batch writer already took are waited for (a failed batch puts them back, written here)."""
        in_flight = self._in_flight
        if in_flight is not None and session_id in in_flight[0]:
            await in_flight[1].wait()
        stamps = self._pending.pop(session_id, None)
        if stamps is not None:
            await self._store.write_stamps([(session_id, stamps)])

    async def flush(self) -> None:
        """Writes what is pending now, after the batch in flight (tests, and shutdown)."""
        if self._task is not None and not self._task.done():
            with contextlib.suppress(StoreUnavailable):
                await asyncio.shield(self._task)
        batch, self._pending = self._pending, {}
        if batch:
            await self._store.write_stamps(list(batch.items()))

    async def _run(self) -> None:
        tries = 0
        while self._pending:
            await asyncio.sleep(self._window if tries == 0 else RETRY_SECONDS)
            batch, self._pending = self._pending, {}
            self._in_flight = (batch, written := asyncio.Event())
            try:
                await self._store.write_stamps(list(batch.items()))
                tries = 0
            except StoreUnavailable as exc:
                tries += 1
                log.warning("start_stamps_write_failed", sessions=len(batch), error=exc.message)
                if tries < MAX_TRIES:
                    self._pending = batch | self._pending
                else:
                    tries = 0  # those stamps are given up; the reaper's rules need none
            finally:
                self._in_flight = None
                written.set()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(StoreUnavailable):
            await self.flush()
