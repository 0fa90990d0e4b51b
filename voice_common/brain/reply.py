"""A reply being produced: iterate it for its pieces; its text and usage once it is done."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from voice_common.brain.engine import Engine, Request
from voice_common.brain.turns import Piece, ToolCall, Usage, count_tokens


class Reply:
    def __init__(self, engine: Engine, request: Request) -> None:
        self._engine = engine
        self._request = request
        self._text: list[str] = []
        self.tool_calls: list[ToolCall] = []
        self._usage: Usage | None = None
        self.done = False

    @property
    def model(self) -> str:
        return self._engine.model

    @property
    def text(self) -> str:
        return "".join(self._text)

    @property
    def usage(self) -> Usage:
        """The model's own count when it gave one, else words and punctuation counted here."""
        if self._usage is not None:
            return self._usage
        prompt = sum(count_tokens(_content(m)) for m in self._request.messages)
        return Usage(prompt_tokens=prompt, completion_tokens=count_tokens(self.text))

    def __aiter__(self) -> AsyncIterator[Piece]:
        return self._pieces()

    async def _pieces(self) -> AsyncIterator[Piece]:
        async for piece in self._engine.stream(self._request):
            if isinstance(piece, Usage):
                self._usage = piece
                continue
            if isinstance(piece, ToolCall):
                self.tool_calls.append(piece)
            else:
                self._text.append(piece)
            yield piece
        self.done = True

    async def complete(self) -> Reply:
        """Reads the whole reply (when nobody streams it)."""
        async for _ in self:
            pass
        return self


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""
