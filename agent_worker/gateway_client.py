"""Reports to the gateway: final transcript segments and agent failures.

Segments are queued and sent by one owned task with retries, so a slow gateway never stalls the
conversation, and flushed when the job shuts down so the last words are not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import aiohttp
import structlog
from livekit import api

from agent_worker.config import WorkerSettings

log = structlog.get_logger("agent_worker.gateway")

WORKER_IDENTITY = "agent-worker"
_RETRIES = 5


class GatewayClient:
    def __init__(self, settings: WorkerSettings, room_name: str) -> None:
        self._settings = settings
        self._room = room_name
        self._base = f"{settings.gateway_url.rstrip('/')}/internal/v1/sessions/{room_name}"
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sender = asyncio.create_task(self._send_loop(), name=f"transcripts:{self._room}")

    def add_segment(self, segment: dict[str, Any]) -> None:
        self._queue.put_nowait(segment)

    async def agent_failed(self, error: str) -> None:
        await self._post("/agent-failed", {"error": error})

    async def call_answered(self) -> None:
        await self._post("/answered", {})

    async def escalate(self, flush_timeout: float = 5.0) -> None:
        """The transcript so far goes first: the gateway's webhook carries it."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), flush_timeout)
        await self._post("/escalate", {})

    async def aclose(self, flush_timeout: float = 5.0) -> None:
        if self._sender is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), flush_timeout)
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        await self._http.close()

    async def _send_loop(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while not self._queue.empty() and len(batch) < 50:
                batch.append(self._queue.get_nowait())
            try:
                await self._post("/transcript", {"segments": batch})
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _post(self, path: str, body: dict[str, Any]) -> None:
        delay = 0.2
        for attempt in range(1, _RETRIES + 1):
            try:
                async with self._http.post(
                    self._base + path,
                    json=body,
                    headers={"Authorization": f"Bearer {self._token()}"},
                ) as resp:
                    if resp.status < 500:
                        if resp.status >= 400:
                            log.warning("gateway_rejected_report", path=path, status=resp.status)
                        return
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning(
                    "gateway_report_failed", path=path, attempt=attempt, error=type(exc).__name__
                )
            await asyncio.sleep(delay)
            delay *= 2
        log.error("gateway_report_dropped", path=path)

    def _token(self) -> str:
        """A short-lived LiveKit-signed token for this room only: the gateway verifies it with the
        same LiveKit secret, so no other shared secret is needed."""
        return (
            api.AccessToken(
                self._settings.livekit_api_key, self._settings.livekit_api_secret.get_secret_value()
            )
            .with_identity(WORKER_IDENTITY)
            .with_grants(api.VideoGrants(room=self._room, room_admin=True))
            .with_ttl(timedelta(minutes=5))
            .to_jwt()
        )
