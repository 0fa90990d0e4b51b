"""What an engine is given and the one method it implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from voice_common.brain.turns import EnginePiece, Turn


@dataclass(frozen=True, slots=True)
class Request:
    """One reply to produce: the prompt as chat-completions messages (system prompt first),
    the same conversation as turns (the responder reads those), and the tools the caller
    offers, as OpenAI function schemas."""

    messages: list[dict[str, Any]]
    turns: tuple[Turn, ...]
    tools: tuple[dict[str, Any], ...] = ()


class Engine(Protocol):
    @property
    def model(self) -> str: ...

    def stream(self, request: Request) -> AsyncIterator[EnginePiece]:
        """Text chunks and tool calls as they come; optionally the model's usage, last.
        Raises BrainError when the model cannot answer."""
        ...
