"""Typed turns in a voice session: what the page's text box sends on livekit-agents' text input
(the `lk.chat` text stream topic) is answered like a spoken turn, in voice and captions, and
stored with its modality, so the transcript tells typed words from heard ones.

The user's message carries the mark in `ChatMessage.extra`, which livekit-agents keeps on the
item it adds to the conversation (conversation_item_added), where the transcript reads it.
"""

from __future__ import annotations

import contextlib

import structlog
from livekit.agents import AgentSession, llm, room_io

from voice_common.brain.turns import MAX_MESSAGE_CHARS

log = structlog.get_logger("agent_worker.typed_input")

MODALITY = "modality"
TEXT, VOICE = "text", "voice"


def typed_message(text: str) -> llm.ChatMessage | None:
    text = text.strip()
    if not text:
        return None
    if len(text) > MAX_MESSAGE_CHARS:
        log.warning("typed_message_truncated", chars=len(text))
        text = text[:MAX_MESSAGE_CHARS]
    return llm.ChatMessage(role="user", content=[text], extra={MODALITY: TEXT})


async def answer_typed_text(session: AgentSession[None], ev: room_io.TextInputEvent) -> None:
    """livekit-agents' own text-input callback, with the user's message marked as typed. A
    speech that may not be interrupted (the greeting) finishes first; the answer follows it."""
    message = typed_message(ev.text)
    if message is None:
        return
    async with session._claim_user_turn():  # as the default callback: the user holds the turn
        with contextlib.suppress(RuntimeError):
            await session.interrupt()
        session.generate_reply(user_input=message)


def modality_of(item: llm.ChatMessage) -> str:
    return TEXT if item.extra.get(MODALITY) == TEXT else VOICE
