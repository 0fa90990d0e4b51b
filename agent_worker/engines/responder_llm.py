"""A rule-based stand-in for an LLM that answers from the agent's FAQ.

It implements the real livekit-agents LLM/LLMStream API so the session code is identical whether
the agent runs fully offline on this responder or on a hosted model: only the engine string in
the config changes. Which item a question is about is voice_common.faq_matcher's job; this is
only the adapter that streams the answer (or the fallback, when nothing matched).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
from voice_common.faq_matcher import FaqMatcher

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def last_user_text(chat_ctx: llm.ChatContext) -> str | None:
    for item in reversed(chat_ctx.items):
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            return item.text_content or ""
    return None


def split_sentences(text: str) -> list[str]:
    """Sentence-sized chunks that concatenate back to the text, mimicking a token stream."""
    parts = [p for p in _SENTENCE_END.split(text.strip()) if p]
    return [p + " " for p in parts[:-1]] + parts[-1:]


class ResponderLLM(llm.LLM[Never]):
    def __init__(self, faq: Sequence[FaqItem], fallback: str) -> None:
        super().__init__()
        self._matcher = FaqMatcher(faq)
        self._fallback = fallback

    @property
    def model(self) -> str:
        return "responder"

    @property
    def provider(self) -> str:
        return "local"

    def answer_for(self, chat_ctx: llm.ChatContext) -> str:
        """With no user turn yet (e.g. a generated greeting) there is nothing to match."""
        text = last_user_text(chat_ctx)
        if text is None:
            return self._fallback
        return self.answer_text(text)

    def answer_text(self, text: str) -> str:
        """The answer to one question, outside any chat (the spoken-set measurements)."""
        return self._matcher.answer(text, self._fallback)

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
        answer = self._responder.answer_for(self._chat_ctx)
        for i, piece in enumerate(split_sentences(answer)):
            self._event_ch.send_nowait(
                llm.ChatChunk(
                    id=request_id,
                    delta=llm.ChoiceDelta(role="assistant" if i == 0 else None, content=piece),
                )
            )
