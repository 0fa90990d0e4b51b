"""A hosted model faked as a real HTTP server on loopback: an OpenAI-compatible
/v1/chat/completions that streams a scripted answer (the aiohttp way of faking an upstream)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Script:
    pieces: list[str] = field(default_factory=lambda: ["Hello ", "from ", "the model."])
    tool_call: tuple[str, str] | None = None  # (name, JSON arguments), sent in two halves
    status: int = 200
    delay_before_first: float = 0.0
    usage: tuple[int, int] | None = (21, 3)


class FakeLLM:
    def __init__(self) -> None:
        self.script = Script()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._server: TestServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("/v1"))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeLLM]:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        try:
            yield self
        finally:
            await self._server.close()

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(await request.json())
        self.headers.append(dict(request.headers))
        script = self.script
        if script.status != 200:
            return web.json_response({"error": {"message": "sk-secret-echo"}}, status=script.status)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await asyncio.sleep(script.delay_before_first)

        async def send(payload: dict[str, Any]) -> None:
            await response.write(f"data: {json.dumps(payload)}\n\n".encode())

        for piece in script.pieces:
            await send({"choices": [{"index": 0, "delta": {"content": piece}}]})
        if script.tool_call is not None:
            name, arguments = script.tool_call
            half = len(arguments) // 2
            first = {"index": 0, "id": "call_1", "function": {"name": name, "arguments": ""}}
            await send({"choices": [{"index": 0, "delta": {"tool_calls": [first]}}]})
            for part in (arguments[:half], arguments[half:]):
                call = {"index": 0, "function": {"arguments": part}}
                await send({"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
        if script.usage is not None:
            prompt, completion = script.usage
            usage = {"prompt_tokens": prompt, "completion_tokens": completion}
            await send({"choices": [], "usage": usage})
        await response.write(b": done\n\ndata: [DONE]\n\n")
        await response.write_eof()
        return response
