"""A rule-based stand-in for an LLM that answers from the agent's FAQ.

It implements the real livekit-agents LLM/LLMStream API so the session code is identical whether
the agent runs fully offline on this responder or on a hosted model: only the engine string in
the config changes.
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

_APOSTROPHES = re.compile(r"['\u2019]")
_WORD = re.compile(r"[^\W_]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def normalize_words(text: str) -> list[str]:
    """Lowercased words without punctuation, so "Opening-hours?" matches "opening hours".

    Apostrophes are dropped rather than split on, so "what's" and "whats" are the same word.
    """
    return _WORD.findall(_APOSTROPHES.sub("", text.casefold()))


def _contains(words: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return n > 0 and any(words[i : i + n] == phrase for i in range(len(words) - n + 1))


def choose_answer(text: str, faq: Sequence[FaqItem], fallback: str) -> str:
    """The answer of the item with the most keywords present in `text`, else `fallback`.

    A keyword matches whole words only (a multiword keyword as a contiguous phrase), so "hour"
    does not fire on "hours". Ties go to the earlier item, letting config order set priority.
    """
    words = normalize_words(text)
    best_score = 0
    best_answer = fallback
    for item in faq:
        score = sum(1 for kw in item.keywords if _contains(words, normalize_words(kw)))
        if score > best_score:
            best_score, best_answer = score, item.answer
    return best_answer


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
        self._faq = tuple(faq)
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
        text = last_user_text(chat_ctx)
        if self._escalation is None or text is None:
            return None
        asks, message, tool = self._escalation
        return (message, tool) if tool in tool_names and asks(text) else None

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
        return choose_answer(text, self._faq, self._fallback)

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
