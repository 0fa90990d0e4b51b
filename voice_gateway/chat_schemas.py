"""Wire shapes of chat sessions (/v1/chat/sessions): camelCase JSON like the rest of our API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from voice_common.brain.turns import MAX_MESSAGE_CHARS
from voice_gateway.schemas import IDENTITY_PATTERN, CountMeta, _In, _Out
from voice_gateway.services.chat import Message
from voice_gateway.store.models import Modality, SessionRecord, SessionStatus

# A chat session's id in a path, as OpenAPI describes it.
SESSION_ID_PARAM = {"type": "string", "pattern": r"^ses_[0-9a-f]{1,64}$"}


class CreateChatSessionRequest(_In):
    agent_id: str = Field(min_length=1, max_length=64, examples=["demo"])
    user_identity: str | None = Field(default=None, pattern=IDENTITY_PATTERN)
    agent_config: dict[str, Any] | None = None


class SendMessageRequest(_In):
    text: str = Field(
        min_length=1,
        max_length=MAX_MESSAGE_CHARS,
        pattern=r"\S",
        description="What the user typed: not blank",
        examples=["What are your opening hours?"],
    )


class ChatMessageView(_Out):
    """One message of a chat session"""

    id: str
    role: Literal["user", "agent"]
    text: str
    modality: Modality = Field(description="`text`: typed, or written by the agent for text")
    created_at: datetime

    @classmethod
    def of(cls, m: Message) -> ChatMessageView:
        return cls(
            id=m.id,
            role=m.role,
            text=m.text,
            modality=Modality(m.modality),
            created_at=m.created_at,
        )


class ChatSessionView(_Out):
    """A chat session and the agent's greeting, its first message"""

    session_id: str
    agent_id: str
    user_identity: str
    status: SessionStatus
    created_at: datetime
    greeting: ChatMessageView | None

    @classmethod
    def of(cls, s: SessionRecord, greeting: Message | None) -> ChatSessionView:
        return cls(
            session_id=s.id,
            agent_id=s.agent_id,
            user_identity=s.user_identity,
            status=s.status,
            created_at=s.created_at,
            greeting=ChatMessageView.of(greeting) if greeting else None,
        )


class ChatReplyView(_Out):
    """The agent's reply, and the user's message it answers"""

    session_id: str
    user_message: ChatMessageView
    message: ChatMessageView


class ChatHistoryView(_Out):
    """A chat session's messages, oldest first"""

    session_id: str
    status: SessionStatus
    data: list[ChatMessageView]
    meta: CountMeta


class MessageDelta(_Out):
    message_id: str
    delta: str
