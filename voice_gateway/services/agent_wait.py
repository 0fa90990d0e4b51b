"""Waiting for the agent of one session ("waitForAgent": true on /start).

The agent's join reaches the gateway as LiveKit's participant_joined webhook, on any replica. A
waiter wakes at once when this replica records it, and otherwise reads the session a few times a
second, so a join recorded by another replica is seen too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

from voice_gateway.store.models import SessionRecord
from voice_gateway.store.sessions import SessionStore

POLL_SECONDS = 0.2


class AgentArrivals:
    def __init__(self, store: SessionStore, poll_seconds: float = POLL_SECONDS) -> None:
        self._store = store
        self._poll = poll_seconds
        self._waiting: dict[str, set[asyncio.Event]] = defaultdict(set)

    def arrived(self, session_id: str) -> None:
        for event in self._waiting.get(session_id, ()):
            event.set()

    async def wait(self, session_id: str, *, within: float) -> SessionRecord | None:
        """The session once its agent joined or it ended, or as it is when `within` seconds have
        passed (None only if the row is gone)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        event = asyncio.Event()
        self._waiting[session_id].add(event)
        try:
            while True:
                record = await self._store.get_by_id(session_id)
                if record is None or record.agent_joined_at is not None or record.is_over:
                    return record
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return record
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(self._poll, remaining))
                event.clear()
        finally:
            waiters = self._waiting[session_id]
            waiters.discard(event)
            if not waiters:
                del self._waiting[session_id]
