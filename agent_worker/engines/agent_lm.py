"""An agent's own language model for PocketSphinx: its FAQ questions, keywords and greeting.

PocketSphinx's general English model spreads its belief over 70,000 words, so a synthetic or
accented "what are your opening hours" comes out as "what are your open you know is". An agent
only has to understand a few dozen phrases, so the recognizer is told which: a trigram model of
the agent's phrases, mixed at the unigram level with the general model's most frequent words so
that other speech still decodes to ordinary words (and the responder can tell it is off-topic)
instead of being forced onto the agent's phrases.

Imports only the standard library and pocketsphinx: it runs inside the decoder child process.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Sequence

from pocketsphinx.lm import ArpaBoLM

_APOSTROPHES = re.compile(r"[\u2018\u2019`]")
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

FORMAT_VERSION = 1
"""Part of the cache key: bump it when the model built from the same phrases changes."""

BACKGROUND_WORDS = 5000
"""How many of the general model's most frequent words stay speakable."""

BACKGROUND_SHARE = 0.3
"""The unigram probability mass given to those words (the agent's own words keep the rest)."""

DISCOUNT_MASS = 0.5
"""Probability mass each history leaves for word sequences the phrases never showed."""


def phrase_words(text: str) -> list[str]:
    """Lowercase dictionary-style tokens; digits and symbols are dropped (not speakable as is)."""
    return _TOKEN.findall(_APOSTROPHES.sub("'", text.casefold()))


def sentences(texts: Iterable[str]) -> list[str]:
    """One training sentence per sentence of each text, as space-joined tokens."""
    out: list[str] = []
    for text in texts:
        for part in _SENTENCE_END.split(text.strip()):
            words = phrase_words(part)
            if words:
                out.append(" ".join(words))
    return out


def model_key(phrases: Sequence[str]) -> str:
    """Names a model by what it is built from, so equal agents share one (and its cache)."""
    payload = json.dumps(
        {
            "v": FORMAT_VERSION,
            "phrases": sentences(phrases),
            "background": [BACKGROUND_WORDS, BACKGROUND_SHARE, DISCOUNT_MASS],
        }
    )
    return "agent-" + hashlib.sha256(payload.encode()).hexdigest()[:16]


def build_arpa(
    phrases: Sequence[str],
    background: Sequence[tuple[str, float]],
    *,
    background_share: float = BACKGROUND_SHARE,
    discount_mass: float = DISCOUNT_MASS,
) -> str:
    """The ARPA text of the agent's model.

    `background` is (word, probability) from the general model; each word gets a pseudo-count
    so that together they hold `background_share` of the unigram mass, in proportion to how
    common they are in general English.
    """
    corpus = sentences(phrases)
    if not corpus:
        raise ValueError("no speakable words in the agent's phrases")
    model = ArpaBoLM(text="\n".join(corpus), add_start=True, discount_mass=discount_mass)
    own = sum(model.grams_1.values())
    total = sum(p for _, p in background)
    if total > 0 and background_share > 0:
        mass = own * background_share / (1.0 - background_share)
        for word, p in background:
            model.grams_1[word] = model.grams_1.get(word, 0) + mass * p / total
    model.compute()
    out = io.StringIO()
    model.write(out)
    return out.getvalue()
