"""The offline responder must pick answers predictably and behave like a real streaming LLM."""

from __future__ import annotations

import pytest
from livekit.agents import llm

from agent_worker.engines.responder_llm import (
    ResponderLLM,
    choose_answer,
    normalize_words,
    split_sentences,
)
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What are your opening hours?", HOURS),
        ("where are you located", LOCATION),
        ("Do you do home delivery?", DELIVERY),
        ("tell me a joke", FALLBACK),
        ("", FALLBACK),
    ],
)
def test_choose_answer_matches_keywords_or_falls_back(text: str, expected: str) -> None:
    assert choose_answer(text, FAQ, FALLBACK) == expected


def test_choose_answer_prefers_the_item_with_most_keywords() -> None:
    # "open" scores one for HOURS; "where", "address" and "located" score three for LOCATION
    text = "Where is the address you are located at, are you open?"
    assert choose_answer(text, FAQ, FALLBACK) == LOCATION


def test_choose_answer_ties_go_to_the_earlier_item() -> None:
    faq = [FaqItem(keywords=["price"], answer="first"), FaqItem(keywords=["cost"], answer="second")]
    assert choose_answer("price and cost", faq, FALLBACK) == "first"


def test_multiword_keyword_must_appear_as_a_contiguous_phrase() -> None:
    faq = [FaqItem(keywords=["opening hours"], answer=HOURS)]
    assert choose_answer("our opening hours", faq, FALLBACK) == HOURS
    assert choose_answer("hours of opening", faq, FALLBACK) == FALLBACK
    assert choose_answer("opening the door takes hours", faq, FALLBACK) == FALLBACK


def test_keywords_match_whole_words_only() -> None:
    faq = [FaqItem(keywords=["hour"], answer=HOURS)]
    assert choose_answer("what are your hours", faq, FALLBACK) == FALLBACK
    assert choose_answer("in an hour", faq, FALLBACK) == HOURS


@pytest.mark.parametrize(
    "text",
    [
        "OPENING-HOURS??",
        "opening, hours.",
        "\u201copening\u201d \u2026 hours!",
        "  Opening\n\tHours ",
    ],
)
def test_case_and_punctuation_are_ignored(text: str) -> None:
    faq = [FaqItem(keywords=["Opening Hours"], answer=HOURS)]
    assert choose_answer(text, faq, FALLBACK) == HOURS


def test_apostrophes_do_not_split_words() -> None:
    faq = [FaqItem(keywords=["what's new"], answer="news")]
    assert normalize_words("What\u2019s NEW?") == ["whats", "new"]
    assert choose_answer("whats new", faq, FALLBACK) == "news"
    assert choose_answer("what s new", faq, FALLBACK) == FALLBACK


def test_keyword_of_only_punctuation_never_matches() -> None:
    faq = [FaqItem(keywords=["?!"], answer="never")]
    assert choose_answer("?!", faq, FALLBACK) == FALLBACK


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
