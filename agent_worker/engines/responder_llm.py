"""A rule-based stand-in for an LLM that answers from the agent's FAQ.

It implements the real livekit-agents LLM/LLMStream API so the session code is identical whether
the agent runs fully offline on this responder or on a hosted model: only the engine string in
the config changes. Which item a question is about is voice_common.faq_matcher's job; this is
only the adapter that streams the answer (or the fallback, when nothing matched).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Never

from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
    llm,
    utils,
)

from voice_common.agent_config import FaqItem
from voice_common.faq_matcher import FaqMatcher, HeardWords

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

HEARD_WORDS = "heard_words"
"""ChatMessage.extra key: the recognizer's [word, posterior] pairs for a spoken user turn."""


def last_user_message(chat_ctx: llm.ChatContext) -> llm.ChatMessage | None:
    for item in reversed(chat_ctx.items):
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            return item
    return None


def heard_words(message: llm.ChatMessage) -> HeardWords:
    """The posteriors a recognizer gave the message's words; none for typed text (or a
    recognizer that gives none), which then counts as heard for sure."""
    pairs = message.extra.get(HEARD_WORDS) or []
    return [(str(word), float(p)) for word, p in pairs]


def split_sentences(text: str) -> list[str]:
    """Sentence-sized chunks that concatenate back to the text, mimicking a token stream."""
    parts = [p for p in _SENTENCE_END.split(text.strip()) if p]
    return [p + " " for p in parts[:-1]] + parts[-1:]


class ResponderLLM(llm.LLM[Never]):
    def __init__(self, faq: Sequence[FaqItem], fallback: str) -> None:
        super().__init__()
        self._matcher = FaqMatcher(faq)
        self._fallback = fallback
        self._escalation: tuple[Callable[[str], bool], str, str] | None = None

    def escalate_on(self, asks_for_person: Callable[[str], bool], message: str, tool: str) -> None:
        """When `asks_for_person(user_text)`, say `message` and call `tool` (if the agent offers
        it), as a hosted LLM would."""
        self._escalation = (asks_for_person, message, tool)

    def escalation_for(
        self, chat_ctx: llm.ChatContext, tool_names: Sequence[str]
    ) -> tuple[str, str] | None:
        """(message, tool) when the caller's last words ask for a person."""
        user = last_user_message(chat_ctx)
        if self._escalation is None or user is None:
            return None
        asks, message, tool = self._escalation
        return (message, tool) if tool in tool_names and asks(user.text_content or "") else None

    @property
    def model(self) -> str:
        return "responder"

    @property
    def provider(self) -> str:
        return "local"

    def answer_for(self, chat_ctx: llm.ChatContext) -> str:
        """With no user turn yet (e.g. a generated greeting) there is nothing to match."""
        message = last_user_message(chat_ctx)
        if message is None:
            return self._fallback
        return self.answer_text(message.text_content or "", heard_words(message))

    def answer_text(self, text: str, heard: HeardWords = ()) -> str:
        """The answer to one question, outside any chat (the spoken-set measurements)."""
        return self._matcher.answer(text, self._fallback, heard)

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> ResponderStream:
        """Tools are accepted for interface compatibility and never called."""
        return ResponderStream(
            self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options
        )


class ResponderStream(llm.LLMStream):
    def __init__(
        self,
        responder: ResponderLLM,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(responder, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._responder = responder

    async def _run(self) -> None:
        request_id = utils.shortuuid("responder_")
        names = llm.tool_context.get_fnc_tool_names(self._tools)
        handoff = self._responder.escalation_for(self._chat_ctx, names)
        if handoff is not None:
            message, tool = handoff
            call = llm.FunctionToolCall(name=tool, arguments="{}", call_id=utils.shortuuid("call_"))
            delta = llm.ChoiceDelta(role="assistant", content=message, tool_calls=[call])
            self._event_ch.send_nowait(llm.ChatChunk(id=request_id, delta=delta))
            return
        answer = self._responder.answer_for(self._chat_ctx)
        for i, piece in enumerate(split_sentences(answer)):
            self._event_ch.send_nowait(
                llm.ChatChunk(
                    id=request_id,
                    delta=llm.ChoiceDelta(role="assistant" if i == 0 else None, content=piece),
                )
            )
