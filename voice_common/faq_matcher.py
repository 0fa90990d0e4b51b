"""Which FAQ item a question is about, or none: the offline responder's understanding.

Pure Python with no livekit imports, so a text channel can answer from the same FAQ the voice
agent does. Questions arrive from a speech recognizer that mishears, so matching is forgiving in
form (word stems: "opened", "opens" and "opening" are one word) and strict in substance: an item
wins only with enough evidence that points to it rather than to the others, and anything else is
"not understood". Answering the wrong FAQ is worse than asking the caller to say it again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import snowballstemmer

from voice_common.agent_config import FaqItem

_APOSTROPHES = re.compile(r"['\u2019]")
_WORD = re.compile(r"[^\W_]+")

# Words that say nothing about which FAQ a question is about. "who", "where" and "when" are not
# here: on their own they tell a name, a place or a time apart.
STOP_WORDS = frozenset(
    """
    a about after again all also am an and any are as at be been before being both but by can
    could did do does doing down during each either else ever every for from further get got had
    has have having he her here hers him his how i if im in into is it its just let lets like may
    me might mine more most must my no nor not now of off oh ok okay on once only or other our
    ours out over own please same shall she should so some such tell than that thats the their
    them then there these they this those through to too uh um under until up us very was we well
    were what whats which while why will with would yeah yes you youre your yours
    """.split()
)

KEYWORD_WEIGHT = 2.0
"""A keyword is the author saying "this word means this item"; a word of an example question
only suggests it."""

MIN_SCORE = 2.0
"""Evidence needed to answer: one keyword unique to the item heard for certain (or typed), or
two such question words, or a keyword heard less surely with more words that back it. One
stray word that a recognizer invented from noise must not be enough. (Chosen on the tuning
phrasings: at 1.75 wrong answers were 6% of the spoken set, at 2.0 under 1%.)"""

MIN_MARGIN = 1.0
"""How far ahead of the runner-up the best item must be; closer than that is a coin toss."""

_stemmer = snowballstemmer.stemmer("english")

HeardWords: TypeAlias = Sequence[tuple[str, float]]
"""A recognizer's words with their posterior probabilities (0-1), in order."""


def normalize_words(text: str) -> list[str]:
    """Lowercased words without punctuation, so "Opening-hours?" matches "opening hours".

    Apostrophes are dropped rather than split on, so "what's" and "whats" are the same word.
    """
    return _WORD.findall(_APOSTROPHES.sub("", text.casefold()))


def content_stems(text: str) -> list[str]:
    """Stems of the words that can tell FAQ items apart, in order."""
    return [_stemmer.stemWord(w) for w in normalize_words(text) if w not in STOP_WORDS]


@dataclass(frozen=True)
class FaqMatch:
    index: int
    item: FaqItem
    score: float
    runner_up: float


class FaqMatcher:
    """Scores a question against each item: the sum, over the question's distinct stems, of
    the stem's weight in the item times its rarity across items (inverse document frequency,
    1 for a stem only that item has), so words several items share count for little."""

    def __init__(
        self,
        faq: Sequence[FaqItem],
        *,
        min_score: float = MIN_SCORE,
        min_margin: float = MIN_MARGIN,
    ) -> None:
        self._faq = tuple(faq)
        self._min_score = min_score
        self._min_margin = min_margin
        self._profiles = [_profile(item) for item in self._faq]
        n = len(self._profiles)
        document_frequency: dict[str, int] = {}
        for profile in self._profiles:
            for stem in profile:
                document_frequency[stem] = document_frequency.get(stem, 0) + 1
        # scaled so a word only one item has weighs 1 however many items there are (n + 1:
        # with a single item its words still count)
        scale = math.log(n + 1) if n else 1.0
        self._idf = {s: math.log((n + 1) / df) / scale for s, df in document_frequency.items()}

    @property
    def faq(self) -> tuple[FaqItem, ...]:
        return self._faq

    def scores(self, text: str, heard: HeardWords = ()) -> list[float]:
        """Each item's evidence. With `heard` (what a recognizer heard, with how sure it was
        of each word) a word counts in proportion to its posterior: a recognizer biased toward
        the FAQ turns off-topic or noisy speech into FAQ words, but rarely with confidence."""
        belief = _stem_belief(heard) if heard else {s: 1.0 for s in content_stems(text)}
        return [
            sum(self._idf[s] * weight * belief[s] for s, weight in profile.items() if s in belief)
            for profile in self._profiles
        ]

    def match(self, text: str, heard: HeardWords = ()) -> FaqMatch | None:
        """The closest item, or None when no item is close enough or two are equally close.

        Ties in score go to the earlier item only if the margin rule lets any item win at all,
        which it never does for an exact tie: config order does not decide a coin toss."""
        scores = self.scores(text, heard)
        if not scores:
            return None
        ranked = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        best = ranked[0]
        runner_up = scores[ranked[1]] if len(ranked) > 1 else 0.0
        if scores[best] < self._min_score or scores[best] - runner_up < self._min_margin:
            return None
        return FaqMatch(index=best, item=self._faq[best], score=scores[best], runner_up=runner_up)

    def answer(self, text: str, fallback: str, heard: HeardWords = ()) -> str:
        found = self.match(text, heard)
        return found.item.answer if found is not None else fallback


def _stem_belief(heard: HeardWords) -> dict[str, float]:
    """How sure the recognizer was of each content stem (its most confident occurrence)."""
    belief: dict[str, float] = {}
    for word, posterior in heard:
        for stem in content_stems(word):
            belief[stem] = max(belief.get(stem, 0.0), min(1.0, max(0.0, posterior)))
    return belief


def _profile(item: FaqItem) -> dict[str, float]:
    weights: dict[str, float] = {}
    _add(weights, item.questions, 1.0)
    _add(weights, item.keywords, KEYWORD_WEIGHT)
    return weights


def _add(weights: dict[str, float], texts: Iterable[str], weight: float) -> None:
    for text in texts:
        for stem in content_stems(text):
            weights[stem] = max(weights.get(stem, 0.0), weight)


def choose_answer(text: str, faq: Sequence[FaqItem], fallback: str) -> str:
    """One-off matching; build a FaqMatcher once when answering many questions."""
    return FaqMatcher(faq).answer(text, fallback)
