"""The offline engine: the agent's FAQ answer to the user's last words, or its fallback.

Which item a question is about is voice_common.faq_matcher's job; this streams the answer in
sentence-sized pieces, as a hosted model streams tokens, so voice (TTS starts on the first
sentence) and text (a `message.delta` per piece) behave as they would with a real model.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence

from voice_common.agent_config import FaqItem
from voice_common.brain.engine import Request
from voice_common.brain.prompt import last_user_turn
from voice_common.brain.turns import EnginePiece
from voice_common.faq_matcher import FaqMatcher, HeardWords

MODEL = "responder"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    """Sentence-sized chunks that concatenate back to the text, mimicking a token stream."""
    parts = [p for p in _SENTENCE_END.split(text.strip()) if p]
    return [p + " " for p in parts[:-1]] + parts[-1:]


class Responder:
    def __init__(self, faq: Sequence[FaqItem], fallback: str) -> None:
        self._matcher = FaqMatcher(faq)
        self._fallback = fallback

    @property
    def model(self) -> str:
        return MODEL

    def answer_text(self, text: str, heard: HeardWords = ()) -> str:
        """The answer to one question, outside any conversation; `heard`: how sure the
        recognizer was of each word, when it was spoken."""
        return self._matcher.answer(text, self._fallback, heard)

    def answer(self, request: Request) -> str:
        """With no user turn yet (e.g. a generated greeting) there is nothing to match."""
        user = last_user_turn(request.turns)
        return self._fallback if user is None else self.answer_text(user.text, user.heard)

    async def stream(self, request: Request) -> AsyncIterator[EnginePiece]:
        for piece in split_sentences(self.answer(request)):
            yield piece
