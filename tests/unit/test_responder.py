"""The offline responder must pick answers predictably and behave like a real streaming LLM."""

from __future__ import annotations

import pytest
from livekit.agents import llm

from agent_worker.engines.responder_llm import HEARD_WORDS, ResponderLLM, split_sentences
from voice_common.agent_config import FaqItem

pytestmark = pytest.mark.unit

FALLBACK = "Sorry, I did not catch that."
HOURS = "We are open nine to five. On weekends we close at noon!"
LOCATION = "We are at 12 Main Street."
DELIVERY = "We deliver within ten kilometres."
FAQ = [
    FaqItem(keywords=["opening hours", "open", "hours", "close"], answer=HOURS),
    FaqItem(keywords=["where", "address", "located"], answer=LOCATION),
    FaqItem(keywords=["deliver", "delivery", "home delivery"], answer=DELIVERY),
]


def test_answer_for_uses_the_closest_item_or_the_fallback() -> None:
    responder = ResponderLLM(FAQ, FALLBACK)
    for text, expected in [
        ("When do you close?", HOURS),
        ("where are you located", LOCATION),
        ("tell me a joke", FALLBACK),
    ]:
        chat_ctx = llm.ChatContext.empty()
        chat_ctx.add_message(role="user", content=text)
        assert responder.answer_for(chat_ctx) == expected


def test_a_spoken_turn_heard_unsure_is_not_answered() -> None:
    """The recognizer's posteriors ride on the message (ListeningAgent puts them there)."""
    responder = ResponderLLM(FAQ, FALLBACK)
    for posterior, expected in [(0.95, LOCATION), (0.2, FALLBACK)]:
        chat_ctx = llm.ChatContext.empty()
        message = chat_ctx.add_message(role="user", content="where are you located")
        message.extra[HEARD_WORDS] = [
            ["where", posterior],
            ["are", 0.9],
            ["you", 0.9],
            ["located", posterior],
        ]
        assert responder.answer_for(chat_ctx) == expected


def test_split_sentences_concatenates_back() -> None:
    assert split_sentences(HOURS) == ["We are open nine to five. ", "On weekends we close at noon!"]
    assert split_sentences("Just one") == ["Just one"]
    assert split_sentences("") == []


async def _reply(responder: ResponderLLM, chat_ctx: llm.ChatContext) -> list[str]:
    pieces: list[str] = []
    async with responder.chat(chat_ctx=chat_ctx) as stream:
        async for chunk in stream:
            assert isinstance(chunk, llm.ChatChunk)
            if chunk.delta and chunk.delta.content:
                pieces.append(chunk.delta.content)
    return pieces


async def test_chat_streams_the_answer_to_the_last_user_message() -> None:
    responder = ResponderLLM(FAQ, FALLBACK)
    chat_ctx = llm.ChatContext.empty()
    chat_ctx.add_message(role="system", content="You are a helpful assistant.")
    chat_ctx.add_message(role="user", content="Where are you located?")
    chat_ctx.add_message(role="assistant", content=LOCATION)
    chat_ctx.add_message(role="user", content="And what are your opening hours?")

    pieces = await _reply(responder, chat_ctx)

    assert len(pieces) == 2  # one chunk per sentence, like a token stream
    assert "".join(pieces) == HOURS


async def test_chat_without_a_user_message_answers_the_fallback() -> None:
    responder = ResponderLLM(FAQ, FALLBACK)
    chat_ctx = llm.ChatContext.empty()
    chat_ctx.add_message(role="system", content="Greet the user.")

    assert "".join(await _reply(responder, chat_ctx)) == FALLBACK


async def test_chat_collect_and_metrics_like_any_llm() -> None:
    responder = ResponderLLM(FAQ, FALLBACK)
    metrics: list[object] = []
    responder.on("metrics_collected", metrics.append)
    chat_ctx = llm.ChatContext.empty()
    chat_ctx.add_message(role="user", content="do you deliver")

    response = await responder.chat(chat_ctx=chat_ctx, tools=[]).collect()

    assert response.text == DELIVERY
    assert response.tool_calls == []
    assert len(metrics) == 1
    assert responder.model == "responder"
