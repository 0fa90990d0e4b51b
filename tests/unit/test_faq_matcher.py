"""The responder's understanding: word stems, the closest item, and "not understood" otherwise."""

from __future__ import annotations

import pytest

from voice_common.agent_config import FaqItem
from voice_common.faq_matcher import FaqMatcher, choose_answer, content_stems, normalize_words

pytestmark = pytest.mark.unit

FALLBACK = "Sorry, I did not catch that."
HOURS = "We are open nine to five. On weekends we close at noon!"
PRICE = "Ten dollars a month."
LOCATION = "We are at 12 Main Street."
FAQ = [
    FaqItem(
        keywords=["opening hours", "open", "hours", "close"],
        questions=["When are you open?", "What time do you close?"],
        answer=HOURS,
    ),
    FaqItem(
        keywords=["price", "cost"],
        questions=["How much does it cost?", "Is there a monthly fee?"],
        answer=PRICE,
    ),
    FaqItem(
        keywords=["address", "located"],
        questions=["Where is your office?", "How do I get there?"],
        answer=LOCATION,
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What are your opening hours?", HOURS),
        ("when do you close", HOURS),
        ("are you opened on sundays", HOURS),  # "opened", "open", "opening": one stem
        ("what do you charge, is it a high monthly fee", PRICE),  # "fee" and "monthly"
        ("how much do your prices cost", PRICE),  # "prices" is "price"
        ("where is the office located", LOCATION),
        ("tell me a joke", FALLBACK),
        ("what is the capital of spain", FALLBACK),
        ("", FALLBACK),
    ],
)
def test_answers_the_closest_item_or_falls_back(text: str, expected: str) -> None:
    assert choose_answer(text, FAQ, FALLBACK) == expected


def test_one_stray_question_word_is_not_enough() -> None:
    # "office" only appears in an example question: a recognizer inventing it from noise
    # must not make the agent give its address
    assert FaqMatcher(FAQ).match("the office") is None
    assert FaqMatcher(FAQ).match("the office where you are located") is not None


def test_function_words_never_count() -> None:
    # "what", "do", "you", "is", "there" are in the questions but say nothing about the item
    assert FaqMatcher(FAQ).scores("what do you is there") == [0.0, 0.0, 0.0]


def test_words_shared_by_items_weigh_less_than_their_own() -> None:
    faq = [
        FaqItem(keywords=["plan"], questions=["what does the basic plan cost"], answer="a"),
        FaqItem(keywords=["refund"], questions=["can i cancel my plan"], answer="b"),
    ]
    matcher = FaqMatcher(faq)
    found = matcher.match("cancel my plan, I want a refund")
    assert found is not None and found.item.answer == "b"
    scores = matcher.scores("plan")
    assert 0 < scores[1] < scores[0] < 1.0  # a keyword of its own would weigh 2


def test_an_equally_close_second_item_means_not_understood() -> None:
    faq = [FaqItem(keywords=["price"], answer="first"), FaqItem(keywords=["cost"], answer="second")]
    assert choose_answer("price and cost", faq, FALLBACK) == FALLBACK
    assert choose_answer("the price", faq, FALLBACK) == "first"


def test_the_winner_carries_its_score_and_margin() -> None:
    found = FaqMatcher(FAQ).match("when do you open and close")
    assert found is not None
    assert found.index == 0 and found.item.answer == HOURS
    assert found.score >= 2 * found.runner_up and found.runner_up == 0.0


def test_a_single_item_agent_still_matches_its_keywords() -> None:
    faq = [FaqItem(keywords=["password"], answer="Reset it from the sign in page.")]
    assert choose_answer("I forgot my password", faq, FALLBACK) != FALLBACK
    assert choose_answer("I forgot my umbrella", faq, FALLBACK) == FALLBACK


def test_an_agent_without_faq_understands_nothing() -> None:
    assert FaqMatcher([]).match("what are your opening hours") is None


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
    assert choose_answer(text, FAQ, FALLBACK) == HOURS


def test_apostrophes_do_not_split_words() -> None:
    assert normalize_words("What\u2019s NEW?") == ["whats", "new"]
    faq = [FaqItem(keywords=["o'clock"], answer="time")]
    assert choose_answer("at five oclock", faq, FALLBACK) == "time"


def test_content_stems_drop_function_words_and_stem_the_rest() -> None:
    assert content_stems("When are you opening the offices?") == ["when", "open", "offic"]


def test_keyword_of_only_punctuation_never_matches() -> None:
    faq = [FaqItem(keywords=["?!"], answer="never")]
    assert choose_answer("?!", faq, FALLBACK) == FALLBACK


def test_a_word_heard_unsure_counts_for_less() -> None:
    """A recognizer biased toward the FAQ turns noise into FAQ words, but unsure of them."""
    matcher = FaqMatcher(FAQ)
    text = "where is it located"
    assert matcher.match(text, [("where", 0.9), ("is", 0.9), ("it", 0.6), ("located", 0.95)])
    assert matcher.match(text, [("where", 0.9), ("is", 0.9), ("it", 0.6), ("located", 0.2)]) is None


def test_heard_words_decide_and_their_stems_count_once_at_their_surest() -> None:
    matcher = FaqMatcher(FAQ)
    heard = [("price", 0.2), ("prices", 0.9), ("cost", 0.8)]
    found = matcher.match("the price the prices cost", heard)
    assert found is not None and found.item.answer == PRICE
    assert found.score == pytest.approx(2.0 * 0.9 + 2.0 * 0.8)  # two keywords of that item
    # a lone keyword must be heard for certain
    assert matcher.match("the price", [("the", 1.0), ("price", 0.9)]) is None
    assert matcher.match("the price", [("the", 0.5), ("price", 1.0)]) is not None
    # typed text (no posteriors) counts as heard for sure
    assert matcher.scores("price") == matcher.scores("price", [("price", 1.0)])
