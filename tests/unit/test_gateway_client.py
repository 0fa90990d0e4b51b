"""The worker's reports to the gateway: the last transcript lines are sent when the job shuts down,
registered the way agent.py registers them (livekit-agents' add_shutdown_callback), against a
stand-in gateway that is a real aiohttp app on a free port."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from livekit.agents import JobContext
from pydantic import SecretStr

from agent_worker.config import WorkerSettings
from agent_worker.gateway_client import GatewayClient

pytestmark = pytest.mark.unit


async def test_the_last_lines_reach_the_gateway_when_the_job_shuts_down() -> None:
    received: list[dict[str, Any]] = []

    async def transcript(request: web.Request) -> web.Response:
        received.extend((await request.json())["segments"])
        return web.json_response({"accepted": True})

    app = web.Application()
    app.router.add_post("/internal/v1/sessions/{room}/transcript", transcript)
    async with TestServer(app, host="127.0.0.1") as gateway:
        settings = WorkerSettings(
            gateway_url=str(gateway.make_url("/")),
            livekit_api_secret=SecretStr("s" * 32),
        )
        client = GatewayClient(settings, "room-1")
        client.start()
        client.add_segment({"speaker": "agent", "text": "Goodbye."})
        # livekit-agents calls each shutdown callback with the reason when it takes an argument.
        job = SimpleNamespace(_shutdown_callbacks=[])
        JobContext.add_shutdown_callback(job, client.aclose)  # type: ignore[arg-type]
        for callback in job._shutdown_callbacks:
            await callback("session closed: user_initiated")
    assert received == [{"speaker": "agent", "text": "Goodbye."}]
