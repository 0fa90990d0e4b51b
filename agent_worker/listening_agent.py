"""The session's Agent: it keeps how sure the recognizer was of each word of the user's turn.

livekit-agents hands the LLM only the turn's text (and one averaged transcript_confidence), but
the offline responder weighs each word by its posterior (voice_common.faq_matcher): a caller
who hears a wrong answer is worse off than one asked to say it again. So the words and their
posteriors of the turn's final transcripts ride on the user's chat message (`extra`), set in
on_user_turn_completed, the hook meant for editing that message before the LLM sees it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from livekit import rtc
from livekit.agents import Agent, ModelSettings, llm, stt, utils

from agent_worker.engines.responder_llm import HEARD_WORDS


class ListeningAgent(Agent):
    def __init__(self, *, instructions: str, tools: list[llm.Tool | llm.Toolset] | None = None):
        super().__init__(instructions=instructions, tools=tools)
        self._heard: list[tuple[str, float]] = []

    async def stt_node(
        self, audio: AsyncIterable[rtc.AudioFrame], model_settings: ModelSettings
    ) -> AsyncIterator[stt.SpeechEvent | str]:
        async for event in Agent.default.stt_node(self, audio, model_settings):
            if event.type == stt.SpeechEventType.FINAL_TRANSCRIPT and event.alternatives:
                self.heard(event.alternatives[0])
            yield event

    def heard(self, final: stt.SpeechData) -> None:
        """Words of a final transcript whose recognizer said how sure it was of them."""
        self._heard += [
            (str(w), float(w.confidence)) for w in final.words or [] if utils.is_given(w.confidence)
        ]

    async def on_user_turn_completed(
        self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage
    ) -> None:
        if self._heard:
            new_message.extra[HEARD_WORDS] = self._heard
        self._heard = []
