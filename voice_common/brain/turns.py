"""What a brain reads (the conversation's turns) and what it produces (pieces of a reply)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Role = Literal["user", "agent"]


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of the conversation: the user's (spoken or typed) or the agent's."""

    role: Role
    text: str
    # A spoken user turn: the recognizer's words with their posteriors (0-1), which the offline
    # responder weighs (voice_common.faq_matcher); empty for typed text, taken as sure.
    heard: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asks the caller's side to run a tool (e.g. hand the caller to a person)."""

    call_id: str
    name: str
    arguments: str  # JSON text, as OpenAI-compatible models send it


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


# A reply streams as text chunks and tool calls; an engine may end with the model's own count.
Piece = str | ToolCall
EnginePiece = str | ToolCall | Usage

_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Words and punctuation marks: what the offline responder reports as tokens (it has no
    tokenizer), and the estimate when a model reports no usage of its own."""
    return len(_TOKEN.findall(text))


MAX_MESSAGE_CHARS = 4000
"""The longest typed message any channel takes (a chat message, a typed turn in a call)."""
