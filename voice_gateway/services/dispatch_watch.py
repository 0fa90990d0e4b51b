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
from voice_gateway.services.livekit import LiveKitRooms
from voice_gateway.store.database import now
from voice_gateway.store.models import EndReason, SessionRecord, SessionStatus
from voice_gateway.store.sessions import SessionStore

log = structlog.get_logger("voice_gateway.dispatch")

MAX_ATTEMPTS = 2
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
    until: datetime | None = None


def dispatch_metadata(
    *, session_id: str, agent_id: str, user_identity: str, config: AgentConfig, attempt: int
) -> str:
    return DispatchMetadata(
        session_id=session_id,
        agent_id=agent_id,
        user_identity=user_identity,
        config=config,
        attempt=attempt,
    ).model_dump_json(by_alias=True)


def judge(
    record: SessionRecord, at: datetime, *, assign_timeout: float, join_timeout: float
) -> Verdict:
    """What the session needs at `at`. An unclaimed dispatch has `assign_timeout` to be claimed;
    a claimed one has `join_timeout` from the dispatch for its agent to be in the room."""
    if record.is_over or record.agent_joined_at is not None:
        return Verdict(Next.DONE)
    if record.status != SessionStatus.ACTIVE:
        return Verdict(Next.DONE)  # still starting: the start or the stuck-start reaper owns it
    since = record.last_dispatched_at or record.started_at or record.created_at
    allowed = join_timeout if record.agent_job_id else assign_timeout
    deadline = since + timedelta(seconds=allowed)
    if at < deadline:
        return Verdict(Next.WAIT, deadline)
    return Verdict(Next.REDISPATCH if record.dispatch_attempts < MAX_ATTEMPTS else Next.GIVE_UP)


class DispatchWatch:
    def __init__(
        self,
        *,
        settings: GatewaySettings,
        store: SessionStore,
        livekit: LiveKitRooms,
        give_up: GiveUp,
    ) -> None:
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
        verdict = self.judge(record, now())
        if verdict.next in (Next.DONE, Next.WAIT):
            return verdict
        # The join webhook may be late or lost; LiveKit knows whether an agent is in the room.
        if await self._livekit.has_agent(record.room_name):
            return Verdict(Next.DONE)
        if verdict.next == Next.REDISPATCH:
            return await self._redispatch(record)
        await self._give_up(
            record,
            EndReason.AGENT_NEVER_JOINED,
            f"no agent joined after {record.dispatch_attempts} dispatches",
        )
        return Verdict(Next.DONE)

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
        )
        try:
            withdrawn = await self._livekit.withdraw_dispatches(record.room_name)
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
