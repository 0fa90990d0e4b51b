"""A hosted model behind any OpenAI-compatible chat-completions endpoint, streamed.

One client for the worker (spoken turns) and the gateway (typed ones). It reads the server-sent
events itself: text deltas as they come, tool calls once their arguments are complete, and the
server's usage when it reports one (`stream_options.include_usage`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from voice_common.brain.engine import Request
from voice_common.brain.errors import BrainError
from voice_common.brain.turns import EnginePiece, ToolCall, Usage

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Connect and per-read bounds; a long answer may stream for longer than either.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
_RETRYABLE = frozenset({408, 409, 429})


@dataclass
class _PendingCall:
    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class OpenAICompatible:
    def __init__(
        self,
        *,
        model: str,
        api_key: str,
        base_url: str | None = None,
        http: aiohttp.ClientSession | None = None,
    ) -> None:
        self._model = model
        self._api_key = api_key
        self._url = (base_url or DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"
        self._http = http

    @property
    def model(self) -> str:
        return self._model

    def __repr__(self) -> str:  # the key never shows, in logs or tracebacks
        return f"OpenAICompatible(model={self._model!r}, url={self._url!r})"

    async def stream(self, request: Request) -> AsyncIterator[EnginePiece]:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": request.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            body["tools"] = list(request.tools)
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "text/event-stream"}
        timeout = aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
        async with contextlib.AsyncExitStack() as stack:
            http = self._http
            if http is None:
                http = await stack.enter_async_context(aiohttp.ClientSession())
            try:
                resp = await stack.enter_async_context(
                    http.post(self._url, json=body, headers=headers, timeout=timeout)
                )
                if resp.status >= 400:
                    raise BrainError(
                        f"the language model answered HTTP {resp.status}",
                        retryable=resp.status in _RETRYABLE or resp.status >= 500,
                        status=resp.status,
                    )
                async for piece in _pieces(resp):
                    yield piece
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise BrainError(
                    f"the language model could not be reached ({type(exc).__name__})",
                    retryable=True,
                ) from None


async def _events(resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """The JSON payload of each `data:` line until `data: [DONE]` (comments and other fields
    of the event stream say nothing a chat completion needs)."""
    async for raw in resp.content:
        line = raw.decode("utf-8", errors="replace").strip()
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            raise BrainError("the language model sent a malformed event", retryable=True) from None
        if isinstance(event, dict):
            yield event


async def _pieces(resp: aiohttp.ClientResponse) -> AsyncIterator[EnginePiece]:
    calls: dict[int, _PendingCall] = {}
    usage: Usage | None = None
    async for event in _events(resp):
        if isinstance(event.get("error"), dict):
            raise BrainError("the language model reported an error mid-answer", retryable=True)
        if isinstance(u := event.get("usage"), dict):
            usage = Usage(
                prompt_tokens=int(u.get("prompt_tokens") or 0),
                completion_tokens=int(u.get("completion_tokens") or 0),
            )
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            if content := delta.get("content"):
                yield str(content)
            for call in delta.get("tool_calls") or []:
                pending = calls.setdefault(int(call.get("index") or 0), _PendingCall())
                pending.call_id = call.get("id") or pending.call_id
                function = call.get("function") or {}
                pending.name = function.get("name") or pending.name
                pending.arguments.append(function.get("arguments") or "")
    for index in sorted(calls):
        pending = calls[index]
        yield ToolCall(
            call_id=pending.call_id or f"call_{index}",
            name=pending.name,
            arguments="".join(pending.arguments) or "{}",
        )
    if usage is not None:
        yield usage
