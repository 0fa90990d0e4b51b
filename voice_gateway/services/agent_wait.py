"""Waiting for the agent of one session ("waitForAgent": true on /start).

The answer must come once the agent is in the room, and soon after. LiveKit lists the agent as soon
as it has joined, while its participant_joined webhook waits for the agent's media connection, so
a waiter asks LiveKit ten times a second while an agent is due (slower after that) and records
the join it finds. It reads the session twice a second, and at once when this replica records a
join from the webhook, which catches a join recorded by another replica and a session that ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import replace
from datetime import datetime

import structlog

from voice_gateway.errors import LiveKitUnavailable
from voice_gateway.services.livekit import LiveKitRooms
from voice_gateway.store.models import SessionRecord
from voice_gateway.store.sessions import SessionStore

log = structlog.get_logger("voice_gateway.agent_wait")

POLL_SECONDS = 0.1
# An agent normally joins within a second or two; past this, a slower poll is enough.
FAST_POLL_FOR_SECONDS = 10.0
SLOW_POLL_SECONDS = 0.5
# The session itself (ended meanwhile? joined by a webhook another replica took?) is read at
# this pace, and at once when this replica records the join.
STORE_READ_SECONDS = 0.5


class AgentArrivals:
    def __init__(self, store: SessionStore, livekit: LiveKitRooms) -> None:
        self._store = store
        self._livekit = livekit
        self._waiting: dict[str, set[asyncio.Event]] = defaultdict(set)

    def arrived(self, session_id: str) -> None:
        for event in self._waiting.get(session_id, ()):
            event.set()

    async def wait(self, record: SessionRecord, *, within: float) -> SessionRecord:
        """The session once its agent joined or it ended, or as it is when `within` seconds have
        passed."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + within
        event = asyncio.Event()
        self._waiting[record.id].add(event)
        current = record
        next_read = started + STORE_READ_SECONDS
        try:
            while True:
                joined_at = await self._joined_in_livekit(current)
                if joined_at is not None:
                    await self._store.record_join(record.id, who="agent", at=joined_at)
                    return replace(current, agent_joined_at=current.agent_joined_at or joined_at)
                if event.is_set() or loop.time() >= next_read:
                    event.clear()
                    current = await self._store.get_by_id(record.id) or current
                    next_read = loop.time() + STORE_READ_SECONDS
                    if current.agent_joined_at is not None or current.is_over:
                        return current
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return current
                fast = loop.time() - started < FAST_POLL_FOR_SECONDS
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        event.wait(), min(POLL_SECONDS if fast else SLOW_POLL_SECONDS, remaining)
                    )
        finally:
            waiters = self._waiting[record.id]
            waiters.discard(event)
            if not waiters:
                del self._waiting[record.id]

    async def _joined_in_livekit(self, record: SessionRecord) -> datetime | None:
        try:
            return await self._livekit.agent_joined_at(record.room_name)
        except LiveKitUnavailable as exc:
            log.warning("agent_wait_livekit_failed", room=record.room_name, error=exc.message)
            return None
