"""Which agent workers could take a session now, from what they report to the internal API.

LiveKit has no API that lists its workers, and it drops a dispatch no worker can take with only a
log line. So every worker reports its free slots (and draining, at once, on SIGTERM) to whichever
gateway replica answers; the reports live in the database, and every replica reads the same ones.
A report is a pre-flight, not a promise: the dispatch watch (dispatch_watch.py) is what makes sure
the agent comes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from voice_gateway.config import GatewaySettings
from voice_gateway.errors import NoAgentAvailable
from voice_gateway.store.database import now
from voice_gateway.store.models import WorkerReport, WorkerState
from voice_gateway.store.workers import WorkerStore

# Reports this old are deleted by the reaper's pass; they are long past counting.
FORGET_AFTER = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Capacity:
    agent_name: str
    workers: tuple[WorkerReport, ...]
    ttl_seconds: float

    @property
    def free_slots(self) -> int:
        return sum(w.free_slots for w in self.workers)

    @property
    def draining(self) -> int:
        return sum(1 for w in self.workers if w.draining)

    @property
    def full(self) -> int:
        return sum(1 for w in self.workers if not w.draining and w.free_slots == 0)

    def describe(self) -> str:
        if self.free_slots:
            return "ok"
        if not self.workers:
            return (
                f"no agent worker for agent name {self.agent_name!r} has reported in the last "
                f"{self.ttl_seconds:g} s"
            )
        return (
            f"no agent worker for agent name {self.agent_name!r} has a free slot "
            f"({len(self.workers)} reporting: {self.draining} draining, {self.full} full)"
        )


class AgentCapacity:
    def __init__(
        self,
        settings: GatewaySettings,
        store: WorkerStore,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock

    async def report(self, state: WorkerState) -> None:
        await self._store.report(state)

    async def current(self) -> Capacity:
        ttl = self._settings.worker_report_ttl_seconds
        workers = await self._store.seen_since(
            self._settings.agent_name, self._clock() - timedelta(seconds=ttl)
        )
        return Capacity(self._settings.agent_name, tuple(workers), ttl)

    async def available_since(self, since: datetime) -> bool:
        """Whether a worker with a free slot has reported since `since` (and recently)."""
        if not self._settings.agent_capacity_check:
            return True
        ttl = timedelta(seconds=self._settings.worker_report_ttl_seconds)
        workers = await self._store.seen_since(
            self._settings.agent_name, max(since, self._clock() - ttl)
        )
        return any(w.free_slots for w in workers)

    async def require(self) -> None:
        """Raises NoAgentAvailable when no fresh, non-draining worker has a free slot."""
        if not self._settings.agent_capacity_check:
            return
        capacity = await self.current()
        if capacity.free_slots == 0:
            raise NoAgentAvailable(
                capacity.describe(), retry_after_seconds=self._settings.no_agent_retry_after_seconds
            )

    async def forget_stale(self) -> int:
        return await self._store.forget_before(self._clock() - FORGET_AFTER)
