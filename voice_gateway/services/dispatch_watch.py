"""The dispatch watch: after a dispatch, a worker's job must claim the session and its agent must
join; a dispatch nobody took is re-dispatched once, and then the session fails.

LiveKit drops a dispatch that no worker can take (none registered, all full, the chosen one frozen)
with a log line only, and a worker may die between taking a job and joining. Each start follows its
own session with a task on the replica that served it; the reaper's leader pass runs the same check
for every session, so a session whose replica died is still followed. Both act through
compare-and-set writes (store.begin_redispatch, store.finish), so they never act twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from voice_common.agent_config import AgentConfig, DispatchMetadata
from voice_gateway.config import GatewaySettings
from voice_gateway.errors import ApiError, LiveKitUnavailable
from voice_gateway.services.capacity import AgentCapacity
from voice_gateway.services.livekit import LiveKitRooms
from voice_gateway.store.database import now
from voice_gateway.store.models import DISPATCHED_STATUSES, EndReason, SessionRecord
from voice_gateway.store.sessions import SessionStore

log = structlog.get_logger("voice_gateway.dispatch")

MAX_ATTEMPTS = 2
CAPACITY_RECHECK = timedelta(seconds=1)
# A follow-up whose store or LiveKit calls keep failing stops after this many tries; the reaper's
# pass takes over.
_MAX_ERRORS = 20

GiveUp = Callable[[SessionRecord, str, str], Awaitable[None]]


class Next(enum.Enum):
    DONE = "done"
    WAIT = "wait"
    REDISPATCH = "redispatch"
    GIVE_UP = "give_up"


@dataclass(frozen=True, slots=True)
class Verdict:
    next: Next
    until: datetime | None = None  # WAIT: when to look again; REDISPATCH: the give-up time
    agent_in_room: bool = False  # LiveKit has the agent though no join was recorded


def dispatch_metadata(
    *,
    session_id: str,
    agent_id: str,
    user_identity: str,
    config: AgentConfig,
    attempt: int,
    channel: str,
) -> str:
    return DispatchMetadata(
        session_id=session_id,
        agent_id=agent_id,
        user_identity=user_identity,
        config=config,
        attempt=attempt,
        channel=channel,
    ).model_dump_json(by_alias=True)


def judge(
    record: SessionRecord, at: datetime, *, assign_timeout: float, join_timeout: float
) -> Verdict:
    """What the session needs at `at`, from its row alone.

    A dispatch must be claimed by a worker's job within `assign_timeout`, and a claimed job's agent
    must be in the room within `join_timeout` of the dispatch. When the first dispatch misses
    either, it is re-dispatched (REDISPATCH; `until`, counted from the first dispatch, is how long
    it may wait for a worker with a free slot); when the second misses, it is given up."""
    if record.is_over or record.agent_joined_at is not None:
        return Verdict(Next.DONE)
    if record.status not in DISPATCHED_STATUSES or record.dispatched_at is None:
        # Still starting (the start or the stuck-start reaper owns it), or not dispatched by
        # SessionService.open (the reaper's agent-join rule covers it). A ringing phone
        # session is followed: its call is answered only once the agent speaks.
        return Verdict(Next.DONE)
    first = record.dispatched_at
    last = record.redispatched_at or first
    allowed = join_timeout if record.agent_job_id else assign_timeout
    deadline = last + timedelta(seconds=allowed)
    if at < deadline:
        return Verdict(Next.WAIT, deadline)
    if record.dispatch_attempts >= MAX_ATTEMPTS:
        return Verdict(Next.GIVE_UP)
    return Verdict(Next.REDISPATCH, first + timedelta(seconds=join_timeout))


class DispatchWatch:
    def __init__(
        self,
        *,
        settings: GatewaySettings,
        store: SessionStore,
        livekit: LiveKitRooms,
        give_up: GiveUp,
        capacity: AgentCapacity | None = None,
    ) -> None:
        self._capacity = capacity
        self._settings = settings
        self._store = store
        self._livekit = livekit
        self._give_up = give_up
        self._tasks: set[asyncio.Task[None]] = set()

    def judge(self, record: SessionRecord, at: datetime) -> Verdict:
        return judge(
            record,
            at,
            assign_timeout=self._settings.dispatch_assign_timeout_seconds,
            join_timeout=self._settings.agent_join_timeout_seconds,
        )

    def follow(self, session_id: str) -> None:
        """Follows a just-dispatched session from this replica until its agent is in."""
        task = asyncio.create_task(self._follow(session_id), name=f"dispatch-watch:{session_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def check(self, session_id: str) -> Verdict:
        """Reads the session and does what it needs now: nothing, re-dispatch, or give up."""
        record = await self._store.get_by_id(session_id)
        if record is None:
            return Verdict(Next.DONE)
        verdict = await self.assess(record, now())
        if verdict.agent_in_room:
            await self._store.record_join(record.id, who="agent", at=now())
        if verdict.next == Next.REDISPATCH:
            return await self._redispatch(record)
        if verdict.next == Next.GIVE_UP:
            await self._give_up(
                record,
                EndReason.AGENT_NEVER_JOINED,
                f"no agent joined after {record.dispatch_attempts} dispatch(es)",
            )
            return Verdict(Next.DONE)
        return verdict

    async def assess(self, record: SessionRecord, at: datetime) -> Verdict:
        """The row's verdict, checked against LiveKit and the workers' reports before anything
        is done: a job LiveKit assigned but whose process is slow to start is waited for (up to
        the join timeout), a re-dispatch waits for a worker that has reported a free slot since
        the dispatch went unanswered, and an agent already in the room ends the watch."""
        verdict = self.judge(record, at)
        if verdict.next in (Next.DONE, Next.WAIT):
            return verdict
        last = record.last_dispatched_at or record.created_at
        join_deadline = last + timedelta(seconds=self._settings.agent_join_timeout_seconds)
        if record.agent_job_id is None and now() < join_deadline:
            if await self._livekit.dispatch_taken(
                record.room_name, agent_name=self._settings.agent_name
            ):
                return Verdict(Next.WAIT, join_deadline)
        if verdict.next == Next.REDISPATCH and not await self._worker_ready_since(last):
            if verdict.until is not None and now() < verdict.until:
                return Verdict(Next.WAIT, min(verdict.until, now() + CAPACITY_RECHECK))
            verdict = Verdict(Next.GIVE_UP)
        # The join webhook may be late or lost; LiveKit knows whether an agent is in the room.
        if await self._livekit.has_agent(record.room_name):
            return Verdict(Next.DONE, agent_in_room=True)
        return verdict

    async def _worker_ready_since(self, since: datetime) -> bool:
        """Only a worker that has said it has a free slot since the dispatch went unanswered is
        worth a second dispatch: a frozen or killed one still looks fresh for a few seconds."""
        if self._capacity is None:
            return True
        return await self._capacity.available_since(since)

    async def _redispatch(self, record: SessionRecord) -> Verdict:
        moved = await self._store.begin_redispatch(record.id)
        if moved is None:
            return Verdict(Next.WAIT, now())  # another replica did it, or the agent came: re-read
        bound = log.bind(session_id=record.id, room=record.room_name, agent_id=record.agent_id)
        metadata = dispatch_metadata(
            session_id=record.id,
            agent_id=record.agent_id,
            user_identity=record.user_identity,
            config=AgentConfig.model_validate(record.agent_config),
            attempt=moved.dispatch_attempts,
            channel=record.channel,
        )
        try:
            withdrawn = await self._livekit.withdraw_dispatches(
                record.room_name, agent_name=self._settings.agent_name
            )
            await self._livekit.dispatch_agent(
                record.room_name, agent_name=self._settings.agent_name, metadata=metadata
            )
        except LiveKitUnavailable as exc:
            await self._give_up(moved, EndReason.DISPATCH_FAILED, exc.message)
            return Verdict(Next.DONE)
        bound.warning(
            "agent_redispatched",
            attempt=moved.dispatch_attempts,
            withdrawn=withdrawn,
            job_claimed=record.agent_job_id is not None,
        )
        return self.judge(moved, now())

    async def _follow(self, session_id: str) -> None:
        delay = self._settings.dispatch_assign_timeout_seconds
        errors = 0
        while errors < _MAX_ERRORS:
            await asyncio.sleep(delay)
            try:
                verdict = await self.check(session_id)
            except ApiError as exc:
                errors += 1
                log.warning("dispatch_watch_failed", session_id=session_id, error=exc.message)
                delay = 1.0
                continue
            if verdict.until is None:
                return
            delay = max(0.05, (verdict.until - now()).total_seconds())

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
