"""The offline responder as a livekit-agents LLM: the brain's Responder in the BrainLLM adapter.

The session code is identical whether the agent runs on this responder or on a hosted model: only
the engine string in the config changes. Which FAQ item a question is about is
voice_common.faq_matcher's job (each heard word weighed by the recognizer's posterior, which
the turn carries: brain_llm.HEARD_WORDS), and the answer is the one the gateway's text channels
give. Asked for a person (the agent's escalation phrases), it says the escalation message and
calls the escalation tool, as a hosted LLM would (agent_worker/escalation.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from livekit.agents import llm

from agent_worker.engines.brain_llm import HEARD_WORDS, BrainLLM, Handoff, turns_of
from voice_common.agent_config import AgentConfig, FaqItem
from voice_common.brain import Brain
from voice_common.brain.prompt import last_user_text
from voice_common.brain.responder import Responder, split_sentences
from voice_common.faq_matcher import HeardWords, normalize_words

__all__ = ["HEARD_WORDS", "ResponderLLM", "normalize_words", "split_sentences"]


class ResponderLLM(BrainLLM):
    def __init__(
        self, faq: Sequence[FaqItem], fallback: str, *, config: AgentConfig | None = None
    ) -> None:
        config = config or AgentConfig(faq=list(faq), fallback=fallback)
        self._responder = Responder(faq, fallback)
        self._escalation: tuple[Callable[[str], bool], str, str] | None = None
        super().__init__(Brain(config, self._responder), provider="local")

    def escalate_on(self, asks_for_person: Callable[[str], bool], message: str, tool: str) -> None:
        """When `asks_for_person(user_text)`, say `message` and call `tool` (if the agent offers
        it), as a hosted LLM would."""
        self._escalation = (asks_for_person, message, tool)

    def handoff(self, chat_ctx: llm.ChatContext, tool_names: Sequence[str]) -> Handoff | None:
        """(message, tool) when the caller's last words ask for a person."""
        text = last_user_text(turns_of(chat_ctx))
        if self._escalation is None or text is None:
            return None
        asks, message, tool = self._escalation
        return Handoff(message, tool) if tool in tool_names and asks(text) else None

    def answer_for(self, chat_ctx: llm.ChatContext) -> str:
        """With no user turn yet (e.g. a generated greeting) there is nothing to match."""
        return self._responder.answer(self.brain.request(turns_of(chat_ctx)))

    def answer_text(self, text: str, heard: HeardWords = ()) -> str:
        """The answer to one question, outside any chat (the spoken-set measurements)."""
        return self._responder.answer_text(text, heard)
