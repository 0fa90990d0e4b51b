"""Waiting for the agent of one session ("waitForAgent": true on /start).

The answer must come once the agent is in the room, and soon after. LiveKit lists the agent as soon
as it has joined, while its participant_joined webhook waits for the agent's media connection, so
a waiter asks LiveKit ten times a second while an agent is due (slower after that), records the
join it finds, and also wakes at once when this replica records a join from the webhook. Reading
the session each time catches a join recorded by another replica and a session that ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

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
        try:
            while True:
                current = await self._store.get_by_id(record.id) or record
                if current.agent_joined_at is not None or current.is_over:
                    return current
                if await self._joined_in_livekit(current):
                    return await self._store.get_by_id(record.id) or current
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return current
                fast = loop.time() - started < FAST_POLL_FOR_SECONDS
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        event.wait(), min(POLL_SECONDS if fast else SLOW_POLL_SECONDS, remaining)
                    )
                event.clear()
        finally:
            waiters = self._waiting[record.id]
            waiters.discard(event)
            if not waiters:
                del self._waiting[record.id]

    async def _joined_in_livekit(self, record: SessionRecord) -> bool:
        try:
            joined_at = await self._livekit.agent_joined_at(record.room_name)
        except LiveKitUnavailable as exc:
            log.warning("agent_wait_livekit_failed", room=record.room_name, error=exc.message)
            return False
        if joined_at is None:
            return False
        await self._store.record_join(record.id, who="agent", at=joined_at)
        return True
