"""Text with the same agent: chat sessions and OpenAI-compatible completions, answered by the
agent's brain (voice_common.brain) in the gateway itself.

The worker answers spoken turns with the very same brain (its LLM engines are adapters of it), so
a typed question gets the answer a spoken one would. A chat session needs no room, no worker and
no LiveKit: its history is in the database (the transcript), so any replica can answer its next
message, and a reply is one request's work.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import aiohttp
import structlog

from voice_common.agent_config import AgentConfig
from voice_common.brain import Brain, BrainConfigError, BrainError, Reply, Turn, engine_for
from voice_gateway.catalogue import AgentCatalogue
from voice_gateway.config import GatewaySettings
from voice_gateway.errors import (
    ApiError,
    LlmUnavailable,
    ModelNotFound,
    ReplyInProgress,
    SessionEnded,
    SessionNotFound,
)
from voice_gateway.metrics import CHAT_FIRST_PIECE, CHAT_MESSAGES
from voice_gateway.services.keys import Principal
from voice_gateway.services.limits import MESSAGE_BUCKET, RateTicket, StartLimiter
from voice_gateway.services.sessions import NewSession, SessionService
from voice_gateway.store.chat import ChatStore
from voice_gateway.store.database import now
from voice_gateway.store.models import Channel, Modality, SessionRecord, TranscriptSegment
from voice_gateway.store.sessions import SessionStore

log = structlog.get_logger("voice_gateway.chat")

Api = Literal["session", "completions"]


def new_message_id() -> str:
    return f"msg_{secrets.token_hex(12)}"


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    role: Literal["user", "agent"]
    text: str
    modality: str
    created_at: datetime

    @classmethod
    def of(cls, segment: TranscriptSegment) -> Message:
        return cls(
            id=segment.segment_id,
            role="user" if segment.speaker == "user" else "agent",
            text=segment.text,
            modality=segment.modality,
            created_at=segment.spoken_at,
        )

    def segment(self) -> TranscriptSegment:
        return TranscriptSegment(
            segment_id=self.id,
            speaker=self.role,
            text=self.text,
            spoken_at=self.created_at,
            modality=self.modality,
        )

    def turn(self) -> Turn:
        return Turn(role=self.role, text=self.text)


class ChatService:
    def __init__(
        self,
        *,
        settings: GatewaySettings,
        catalogue: AgentCatalogue,
        sessions: SessionService,
        store: SessionStore,
        chat_store: ChatStore,
        http: aiohttp.ClientSession,
        limiter: StartLimiter | None = None,
    ) -> None:
        self._settings = settings
        self._catalogue = catalogue
        self._sessions = sessions
        self._store = store
        self._chat = chat_store
        self._http = http
        self._limiter = limiter
        self._replies: set[asyncio.Task[None]] = set()
        key = settings.openai_api_key
        self._api_keys = {"openai": key.get_secret_value()} if key is not None else {}

    def brain_for(self, config: AgentConfig) -> Brain:
        try:
            engine = engine_for(config, api_keys=self._api_keys, http=self._http)
        except BrainConfigError as exc:
            raise LlmUnavailable(f"this agent cannot answer text here: {exc}") from None
        return Brain(config, engine)

    async def check_message_rate(self, principal: Principal) -> None:
        """Counts one message (or completion) against the key's rate, before the body is read."""
        if self._limiter is not None:
            await self._limiter.check_rate(principal, MESSAGE_BUCKET)

    async def open(
        self,
        *,
        principal: Principal,
        agent_id: str,
        user_identity: str | None,
        overrides: dict[str, Any] | None,
        rate: RateTicket | None = None,
    ) -> tuple[SessionRecord, Message | None]:
        """A chat session, active at once, with the agent's greeting as its first message. An
        agent whose model cannot be built here is refused before anything is stored."""
        config = self._sessions.resolve_requested(agent_id, overrides, principal=principal)
        self.brain_for(config)
        record = await self._sessions.open(
            NewSession(
                agent_id=agent_id,
                identity=user_identity or f"user-{secrets.token_hex(6)}",
                config=config,
                api_key_id=principal.key_id,
                live_cap=principal.limits.max_concurrent_sessions,
                channel=Channel.CHAT,
                rate=rate,
            )
        )
        greeting = None
        if config.greeting.strip():
            greeting = Message(new_message_id(), "agent", config.greeting, Modality.TEXT, now())
            await self._store.add_segments(record.id, [greeting.segment()])
        return record, greeting

    async def session(self, principal: Principal, session_id: str) -> SessionRecord:
        record = await self._store.get_by_id(session_id)
        if record is None or not record.is_chat:
            raise SessionNotFound(f"no chat session with id {session_id!r}")
        principal.require_own_session(record.api_key_id)
        return record

    async def history(
        self, principal: Principal, session_id: str
    ) -> tuple[SessionRecord, list[Message]]:
        record = await self.session(principal, session_id)
        return record, [Message.of(s) for s in await self._store.transcript(record.id)]

    async def end(self, principal: Principal, session_id: str) -> SessionRecord:
        record = await self.session(principal, session_id)
        return await self._sessions.end(record.room_name, actor=principal)

    async def begin(self, principal: Principal, session_id: str, text: str) -> PendingReply:
        """Takes the session's turn and starts the agent's reply to `text` after the history.
        Nothing is stored until the reply completes (PendingReply.complete)."""
        record = await self.session(principal, session_id)
        if record.is_over:
            raise SessionEnded(f"chat session {session_id!r} is over ({record.end_reason})")
        at = now()
        stale = at - timedelta(seconds=self._settings.chat_turn_timeout_seconds)
        if not await self._chat.claim_turn(record.id, at=at, stale_before=stale):
            current = await self._store.get_by_id(record.id)
            if current is None or current.is_over:
                raise SessionEnded(f"chat session {session_id!r} is over")
            raise ReplyInProgress(
                "the agent is still answering this session's previous message",
                retry_after_seconds=1,
            )
        try:
            brain = self.brain_for(AgentConfig.model_validate(record.agent_config))
            history = [Message.of(s).turn() for s in await self._store.transcript(record.id)]
        except BaseException:
            await self._chat.release_turn(record.id)
            raise
        user = Message(new_message_id(), "user", text, Modality.TEXT, at)
        pending = PendingReply(self._chat, record, user, brain.reply([*history, user.turn()]))
        task = asyncio.create_task(pending.produce(), name=f"chat-reply:{record.id}")
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)
        return pending

    async def aclose(self, grace: float = 5.0) -> None:
        """Replies still being written get `grace` seconds to finish and be stored; the rest
        are cancelled (their sessions' turns are handed back)."""
        if self._replies:
            await asyncio.wait(set(self._replies), timeout=grace)
        for task in list(self._replies):
            task.cancel()
        for task in list(self._replies):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def complete_stateless(
        self,
        model: str,
        turns: Sequence[Turn],
        *,
        extra_instructions: Sequence[str] = (),
    ) -> Reply:
        """An OpenAI-compatible completion: the agent `model` answers the conversation the
        caller sent; nothing is stored."""
        config = self._catalogue.get(model)
        if config is None:
            raise ModelNotFound(
                f"The model `{model}` does not exist or you do not have access to it."
            )
        return self.brain_for(config).reply(turns, extra_instructions=extra_instructions)


@dataclass(frozen=True, slots=True)
class Completed:
    """The reply is whole and stored with the message it answers."""

    message: Message


@dataclass(frozen=True, slots=True)
class Failed:
    """The reply failed (the model, or the store): nothing was stored, the turn is free."""

    error: ApiError


class PendingReply:
    """The agent's reply to one message, produced by a task of the ChatService's own: the
    request that asked only reads it (`events()`), so a client that leaves, or a request that
    is cancelled, does not stop it, and the reply is stored all the same. A failure stores
    nothing and hands the turn back."""

    def __init__(self, chat: ChatStore, record: SessionRecord, user: Message, reply: Reply) -> None:
        self._chat = chat
        self.record = record
        self.user = user
        self.reply = reply
        self.message_id = new_message_id()
        self._queue: asyncio.Queue[str | Completed | Failed] = asyncio.Queue()
        self._started = time.perf_counter()

    async def events(self) -> AsyncIterator[str | Completed | Failed]:
        """The reply's text as it comes, then Completed or Failed."""
        while True:
            event = await self._queue.get()
            yield event
            if not isinstance(event, str):
                return

    async def produce(self) -> None:
        agent = self.record.agent_id
        try:
            first = True
            async for piece in self.reply:
                if not isinstance(piece, str):
                    continue  # a chat session offers the model no tools
                if first:
                    first = False
                    CHAT_FIRST_PIECE.labels(api="session").observe(
                        time.perf_counter() - self._started
                    )
                self._queue.put_nowait(piece)
            message = Message(self.message_id, "agent", self.reply.text, Modality.TEXT, now())
            await self._chat.complete_turn(
                self.record.id, [self.user.segment(), message.segment()], at=message.created_at
            )
        except (BrainError, ApiError) as exc:
            error = LlmUnavailable(exc.message) if isinstance(exc, BrainError) else exc
            log.warning("chat_reply_failed", session_id=self.record.id, error=error.code)
            CHAT_MESSAGES.labels(agent, "session", "failed").inc()
            await self._chat.release_turn(self.record.id)
            self._queue.put_nowait(Failed(error))
            return
        except BaseException:
            # Cancelled (the gateway is stopping) or a bug: the session must take messages again.
            CHAT_MESSAGES.labels(agent, "session", "failed").inc()
            await asyncio.shield(self._chat.release_turn(self.record.id))
            self._queue.put_nowait(Failed(LlmUnavailable("the reply was interrupted")))
            raise
        CHAT_MESSAGES.labels(agent, "session", "answered").inc()
        log.info(
            "chat_reply",
            session_id=self.record.id,
            agent_id=agent,
            model=self.reply.model,
            chars=len(message.text),
        )
        self._queue.put_nowait(Completed(message))
