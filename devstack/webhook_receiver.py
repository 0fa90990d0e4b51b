"""An integration's webhook endpoint, as a real HTTP server in the caller's process: it records
every delivery it gets (the end-to-end tests and `make chaos` count them)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from devstack.ports import free_port


class WebhookReceiver:
    """An integration's endpoint, as a real HTTP server in the test process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/voicegw"

    async def start(self) -> None:
        async def hook(request: web.Request) -> web.Response:
            self.received.append((dict(request.headers), await request.read()))
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/hooks/voicegw", hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def events(self, event_type: str, session_id: str) -> list[dict[str, Any]]:
        out = []
        for _headers, body in self.received:
            event = json.loads(body)
            if event["type"] == event_type and event["data"].get("sessionId") == session_id:
                out.append(event)
        return out
