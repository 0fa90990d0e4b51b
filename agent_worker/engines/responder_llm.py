"""The offline responder as a livekit-agents LLM: the brain's Responder in the BrainLLM adapter.

The session code is identical whether the agent runs on this responder or on a hosted model: only
the engine string in the config changes. Which FAQ item a question is about is
voice_common.faq_matcher's job, and the answer is the one the gateway's text channels give.
"""

from __future__ import annotations

from collections.abc import Sequence

from livekit.agents import llm

from agent_worker.engines.brain_llm import BrainLLM, turns_of
from voice_common.agent_config import AgentConfig, FaqItem
from voice_common.brain import Brain
from voice_common.brain.responder import Responder, split_sentences

__all__ = ["ResponderLLM", "split_sentences"]


class ResponderLLM(BrainLLM):
    def __init__(
        self, faq: Sequence[FaqItem], fallback: str, *, config: AgentConfig | None = None
    ) -> None:
        config = config or AgentConfig(faq=list(faq), fallback=fallback)
        self._responder = Responder(faq, fallback)
        super().__init__(Brain(config, self._responder), provider="local")

    def answer_for(self, chat_ctx: llm.ChatContext) -> str:
        """With no user turn yet (e.g. a generated greeting) there is nothing to match."""
        return self._responder.answer(self.brain.request(turns_of(chat_ctx)))

    def answer_text(self, text: str) -> str:
        """The answer to one question, outside any chat (the spoken-set measurements)."""
        return self._responder.answer_text(text)
