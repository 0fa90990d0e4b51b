"""The reaper: no room runs forever and no record lies about a room.

Each pass compares LiveKit's rooms with the live session records, both ways, and ends what must end.
With several gateway replicas on PostgreSQL only the holder of an advisory lock reaps; the same
leader rebuilds what LiveKit lost of the phone numbers and trunks (they live in its Redis only).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from voice_gateway.config import GatewaySettings
from voice_gateway.errors import ApiError
from voice_gateway.metrics import REAPER_ACTIONS, REAPER_FLAGGED
from voice_gateway.services.calls import OutboundCalls
from voice_gateway.services.capacity import AgentCapacity
from voice_gateway.services.dispatch_watch import Next
from voice_gateway.services.livekit import LiveKitRooms, LiveRoom
from voice_gateway.services.outgoing_webhooks import WebhookSender
from voice_gateway.services.phone_lines import PhoneLines
from voice_gateway.services.sessions import SessionService
from voice_gateway.store.database import Database, now
from voice_gateway.store.models import LIVE_STATUSES, EndReason, SessionRecord, SessionStatus
from voice_gateway.store.sessions import SessionStore

log = structlog.get_logger("voice_gateway.reaper")

REAPER_LOCK = 0x72656170
END, FLAG, REDISPATCH, ANSWERED = "end", "flag", "redispatch", "answered"
# The replica that started a session follows its dispatch to the second; the reaper steps in only
# this much later, for sessions whose replica died.
WATCH_FALLBACK_GRACE = timedelta(seconds=2)


@dataclass(frozen=True, slots=True)
class ReapAction:
    room_name: str
    session_id: str | None
    reason: str
    # END, REDISPATCH, ANSWERED (a call LiveKit says is up: the session becomes active), or
    # FLAG (reported, left alone)
    action: str

    def as_json(self) -> dict[str, str | None]:
        d = asdict(self)
        return {
            "roomName": d["room_name"],
            "sessionId": d["session_id"],
            "reason": d["reason"],
            "action": d["action"],
        }


def overdue(record: SessionRecord, at: datetime) -> bool:
    started = record.started_at or record.created_at
    return at - started > timedelta(seconds=record.max_duration_seconds)


class Reaper:
    def __init__(
        self,
        *,
        settings: GatewaySettings,
        db: Database,
        store: SessionStore,
        sessions: SessionService,
        livekit: LiveKitRooms,
        capacity: AgentCapacity | None = None,
        events: WebhookSender | None = None,
        phone: tuple[PhoneLines, OutboundCalls] | None = None,
    ) -> None:
        self._capacity = capacity
        self._events = events
        self._settings = settings
        # Room probes (monotonic seconds): when each room was last probed, and since when its
        # node has not answered. Kept by the leader; a new leader starts afresh.
        self._probed_at: dict[str, float] = {}
        self._unreachable_since: dict[str, float] = {}
        self._db = db
        self._store = store
        self._sessions = sessions
        self._livekit = livekit
        self._phone = phone
        self._reconciled_at: float | None = None

    async def reconcile(self) -> None:
        """LiveKit's SIP state lives in Redis only: put back what went missing. Runs on the
        reaper's leader, so replicas never rebuild the same trunk twice."""
        if self._phone is None:
            return
        at = asyncio.get_running_loop().time()
        interval = self._settings.phone_reconcile_interval_seconds
        if self._reconciled_at is not None and at - self._reconciled_at < interval:
            return
        self._reconciled_at = at
        lines, calls = self._phone
        try:
            await lines.reconcile()
            await calls.reconcile()
        except ApiError as exc:
            log.warning("phone_reconcile_failed", error=exc.message)

    async def plan(self) -> list[ReapAction]:
        rooms = {r.name: r for r in await self._livekit.list_rooms()}
        live = await self._store.live()
        at = now()
        await self._probe(
            [s.room_name for s in live if s.status == SessionStatus.ACTIVE and s.room_name in rooms]
        )
        actions: list[ReapAction] = []
        for s in live:
            try:
                if verdict := await self._judge(s, rooms.get(s.room_name), at):
                    actions.append(verdict)
            except ApiError as exc:
                # One room LiveKit cannot answer for must not stop the pass for every other.
                log.warning("reaper_judge_failed", room=s.room_name, error=exc.message)
        live_rooms = {s.room_name for s in live}
        ready_rooms = await self._phone[0].ready_rooms() if self._phone else set()
        for name in sorted(set(rooms) - live_rooms - ready_rooms):
            record = await self._store.get_by_room(name)
            if record is not None and record.status in LIVE_STATUSES:
                # Its session began after `live` was read (a phone number's waiting room taken by
                # a call in between): judged on the next pass, never closed as ended.
                continue
            if record is not None:
                # Our record says it ended, yet LiveKit still runs the room: close it.
                actions.append(ReapAction(name, record.id, "session_already_ended", END))
            else:
                action = END if self._settings.reap_orphan_rooms else FLAG
                actions.append(ReapAction(name, None, "orphan", action))
        return actions

    async def _probe(self, rooms: list[str]) -> None:
        """Asks the node of each room, at most every room_probe_interval_seconds, whether it still
        hosts it (LiveKitRooms.room_reachable). A node that died sends no webhook and Redis keeps
        listing its rooms; a room that fails two probes that far apart is on a lost node."""
        interval = self._settings.room_probe_interval_seconds
        clock = time.monotonic()
        due = [r for r in rooms if clock - self._probed_at.get(r, -math.inf) >= interval]
        results = await asyncio.gather(*(self._livekit.room_reachable(r) for r in due))
        for room, reachable in zip(due, results, strict=True):
            self._probed_at[room] = clock
            if reachable:
                self._unreachable_since.pop(room, None)
            else:
                self._unreachable_since.setdefault(room, clock)
        for gone in set(self._probed_at) - set(rooms):
            self._probed_at.pop(gone, None)
            self._unreachable_since.pop(gone, None)

    def _node_lost(self, room: str) -> bool:
        since = self._unreachable_since.get(room)
        interval = self._settings.room_probe_interval_seconds
        return since is not None and time.monotonic() - since >= interval

    async def _judge(
        self, s: SessionRecord, room: LiveRoom | None, at: datetime
    ) -> ReapAction | None:
        age = at - (s.started_at or s.created_at)
        if s.status == SessionStatus.STARTING:
            # A start that never completed: the gateway died between its writes.
            if age > timedelta(seconds=self._settings.stuck_start_seconds):
                return ReapAction(s.room_name, s.id, EndReason.REAPED, END)
            return None
        if s.is_chat:
            return self._judge_chat(s, at)
        if overdue(s, at):
            return ReapAction(s.room_name, s.id, EndReason.MAX_DURATION, END)
        if room is None:
            if age > timedelta(seconds=self._settings.room_grace_seconds):
                return ReapAction(s.room_name, s.id, EndReason.ROOM_FINISHED, END)
            return None
        if self._node_lost(s.room_name):
            return ReapAction(s.room_name, s.id, EndReason.LIVEKIT_NODE_LOST, END)
        ringing = s.status == SessionStatus.RINGING
        join_limit = timedelta(seconds=self._settings.user_join_timeout_seconds)
        if not ringing and s.user_joined_at is None and age > join_limit:
            return ReapAction(s.room_name, s.id, EndReason.USER_NEVER_JOINED, END)
        if s.agent_joined_at is None and s.dispatched_at is not None:
            # The dispatch watch's own rule (re-dispatch once, then give up), for sessions whose
            # replica is no longer there to follow them.
            verdict = await self._sessions.watch.assess(s, at - WATCH_FALLBACK_GRACE)
            if verdict.next == Next.REDISPATCH:
                return ReapAction(s.room_name, s.id, "agent_not_dispatched", REDISPATCH)
            if verdict.next == Next.GIVE_UP:
                return ReapAction(s.room_name, s.id, EndReason.AGENT_NEVER_JOINED, END)
            return None
        if ringing:
            return await self._judge_ringing(s, room, age)
        # Fewer than two participants means the user or the agent is missing; only then is it
        # worth asking LiveKit who is there.
        agent_limit = timedelta(seconds=self._settings.agent_join_timeout_seconds)
        if room.num_participants < 2 and age > agent_limit:
            if not await self._livekit.has_agent(room.name):
                reason = EndReason.AGENT_LEFT if s.agent_joined_at else EndReason.AGENT_NEVER_JOINED
                return ReapAction(s.room_name, s.id, reason, END)
        return None

    def _judge_chat(self, s: SessionRecord, at: datetime) -> ReapAction | None:
        """A chat session has no room and no agent to lose: it ends when nobody wrote in it
        for the idle timeout (a reply being written counts as activity)."""
        last = s.last_activity_at or s.started_at or s.created_at
        if at - last > timedelta(seconds=self._settings.chat_idle_timeout_seconds):
            return ReapAction(s.room_name, s.id, EndReason.IDLE_TIMEOUT, END)
        return None

    async def _judge_ringing(
        self, s: SessionRecord, room: LiveRoom, age: timedelta
    ) -> ReapAction | None:
        """A call whose agent is in the room and that neither connected nor failed in time: the
        replica dialing it is gone, or the answer was never reported. LiveKit knows which."""
        limit = self._settings.phone_ringing_timeout_seconds
        if age <= timedelta(seconds=limit + self._settings.agent_join_timeout_seconds):
            return None
        if await self._livekit.sip_call_active(room.name):
            return ReapAction(s.room_name, s.id, "call_answered", ANSWERED)
        return ReapAction(s.room_name, s.id, EndReason.NO_ANSWER, END)

    async def run_once(self, *, dry_run: bool = False) -> list[ReapAction]:
        if not dry_run:
            await self.reconcile()
        actions = await self.plan()
        if dry_run:
            return actions
        if self._capacity is not None:
            await self._capacity.forget_stale()
        if self._events is not None:
            await self._events.enqueue_unannounced()
        REAPER_FLAGGED.clear()
        for action in actions:
            if action.action == FLAG:
                REAPER_FLAGGED.labels(rule=action.reason).inc()
                continue
            try:
                if action.action == REDISPATCH and action.session_id is not None:
                    # The watch logs what it does (it may yet wait for a worker to report).
                    await self._sessions.watch.check(action.session_id)
                    continue
                if action.action == ANSWERED:
                    await self._sessions.answered(action.room_name)
                    log.info("call_answer_recovered", room=action.room_name)
                    continue
                if action.session_id is not None and action.reason != "session_already_ended":
                    await self._sessions.end(action.room_name, reason=action.reason)
                else:
                    await self._livekit.delete_room(action.room_name)
                REAPER_ACTIONS.labels(rule=action.reason, outcome="ended").inc()
                log.info(
                    "reaped",
                    room=action.room_name,
                    session_id=action.session_id,
                    reason=action.reason,
                )
            except ApiError as exc:
                REAPER_ACTIONS.labels(rule=action.reason, outcome="failed").inc()
                log.warning("reap_failed", room=action.room_name, error=exc.message)
        return actions

    async def run_forever(self) -> None:
        """Runs passes while this replica holds the reaper lock; tries for the lock otherwise."""
        interval = self._settings.reaper_interval_seconds
        while True:
            try:
                async with self._leadership() as still_leader:
                    while await still_leader():
                        try:
                            await self.run_once()
                        except ApiError as exc:
                            log.warning("reaper_pass_failed", error=exc.message)
                        await asyncio.sleep(interval)
            except (ApiError, SQLAlchemyError, OSError) as exc:
                log.warning("reaper_lock_failed", error=type(exc).__name__)
            await asyncio.sleep(interval)

    @contextlib.asynccontextmanager
    async def _leadership(self) -> AsyncIterator[Callable[[], Awaitable[bool]]]:
        """SQLite means one gateway process, always the leader. On PostgreSQL the lock lives as
        long as its connection, so a replica that dies releases it without anyone's help."""

        async def always() -> bool:
            return True

        async def never() -> bool:
            return False

        if self._db.is_sqlite:
            yield always
            return
        async with self._db.engine.connect() as conn:
            lock = text("SELECT pg_try_advisory_lock(:k)")
            if not (await conn.execute(lock, {"k": REAPER_LOCK})).scalar():
                yield never
                return
            log.info("reaper_leader")

            async def held() -> bool:
                try:
                    await conn.execute(text("SELECT 1"))
                    return True
                except SQLAlchemyError:
                    return False

            yield held
