"""The session's agent carries the recognizer's word posteriors to the responder."""

from __future__ import annotations

import pytest
from livekit.agents import LanguageCode, llm, stt
from livekit.agents.types import TimedString

from agent_worker.engines.responder_llm import HEARD_WORDS, ResponderLLM
from agent_worker.listening_agent import ListeningAgent
from voice_common.agent_config import FaqItem

pytestmark = pytest.mark.unit

FAQ = [
    FaqItem(keywords=["open", "hours"], answer="Nine to five."),
    FaqItem(keywords=["address", "located"], answer="Main Street."),
]


def _final(*words: tuple[str, float]) -> stt.SpeechData:
    return stt.SpeechData(
        language=LanguageCode("en-US"),
        text=" ".join(w for w, _ in words),
        words=[TimedString(w, confidence=p) for w, p in words],
    )


async def test_a_turns_finals_ride_on_its_message_and_the_next_turn_starts_empty() -> None:
    agent = ListeningAgent(instructions="answer from the FAQ")
    agent.heard(_final(("where", 0.3), ("are", 0.8)))
    agent.heard(_final(("you", 0.9), ("located", 0.2)))
    agent.heard(stt.SpeechData(language=LanguageCode("en-US"), text="no posteriors"))
    chat_ctx = llm.ChatContext.empty()
    message = chat_ctx.add_message(role="user", content="where are you located")

    await agent.on_user_turn_completed(chat_ctx, message)

    assert message.extra[HEARD_WORDS] == [
        ("where", 0.3),
        ("are", 0.8),
        ("you", 0.9),
        ("located", 0.2),
    ]
    # "where" and "located" were guesses: the responder asks again rather than give the address
    assert ResponderLLM(FAQ, "Sorry?").answer_for(chat_ctx) == "Sorry?"

    typed = chat_ctx.add_message(role="user", content="where are you located")
    await agent.on_user_turn_completed(chat_ctx, typed)
    assert HEARD_WORDS not in typed.extra
    assert ResponderLLM(FAQ, "Sorry?").answer_for(chat_ctx) == "Main Street."
