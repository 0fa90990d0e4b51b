"""A chat session's turns: one reply at a time on every replica, and the messages stored with it.

The turn is a compare-and-set on the session row (`reply_started_at`), so two messages sent at
once to one session, through any replicas, get one answer and one 409; a replica that dies mid-
reply leaves a turn that goes stale and is taken by the next message. A message and its reply are
stored together when the reply is complete, so the history never holds a question without the
answer it got (and a failed reply stores nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_, select, update

from voice_gateway.store.database import Database
from voice_gateway.store.models import Channel, Modality, SessionStatus, TranscriptSegment
from voice_gateway.store.sessions import insert_segment
from voice_gateway.store.tables import sessions, transcript_segments


class ChatStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim_turn(self, session_id: str, *, at: datetime, stale_before: datetime) -> bool:
        """The session's turn for one reply: False when it is over or another reply runs."""
        async with self._db.connect() as conn:
            result = await conn.execute(
                update(sessions)
                .where(
                    sessions.c.id == session_id,
                    sessions.c.channel == Channel.CHAT.value,
                    sessions.c.status == SessionStatus.ACTIVE.value,
                    or_(
                        sessions.c.reply_started_at.is_(None),
                        sessions.c.reply_started_at < stale_before,
                    ),
                )
                .values(reply_started_at=at, last_activity_at=at)
            )
        return result.rowcount == 1

    async def complete_turn(
        self, session_id: str, messages: Sequence[TranscriptSegment], *, at: datetime
    ) -> None:
        """Stores the message and its reply, and hands the turn back, in one transaction."""
        async with self._db.connect() as conn:
            for m in messages:
                await conn.execute(insert_segment(session_id, m))
            await conn.execute(
                update(sessions)
                .where(sessions.c.id == session_id)
                .values(reply_started_at=None, last_activity_at=at)
            )

    async def release_turn(self, session_id: str) -> None:
        """A reply that failed: nothing stored, the session takes the next message."""
        async with self._db.connect() as conn:
            await conn.execute(
                update(sessions).where(sessions.c.id == session_id).values(reply_started_at=None)
            )

    async def typed_messages(
        self, *, since: datetime | None, until: datetime | None
    ) -> dict[str, int]:
        """Messages users typed (in chat sessions, and as typed turns of calls), per agent, in
        the sessions created in [since, until): what usage counts as messages."""
        conditions = [
            transcript_segments.c.speaker == "user",
            transcript_segments.c.modality == Modality.TEXT.value,
        ]
        if since is not None:
            conditions.append(sessions.c.created_at >= since)
        if until is not None:
            conditions.append(sessions.c.created_at < until)
        stmt = (
            select(sessions.c.agent_id, func.count())
            .select_from(
                transcript_segments.join(
                    sessions, sessions.c.id == transcript_segments.c.session_id
                )
            )
            .where(and_(*conditions))
            .group_by(sessions.c.agent_id)
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {r[0]: int(r[1]) for r in rows}
