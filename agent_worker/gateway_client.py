"""Reports to the gateway: the job's claim on its session, final transcript segments, the first
agent audio, and agent failures.

Segments are queued and sent by one owned task with retries, so a slow gateway never stalls the
conversation, and flushed when the job shuts down so the last words are not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import structlog
from livekit import api

from agent_worker.config import WorkerSettings

log = structlog.get_logger("agent_worker.gateway")

WORKER_IDENTITY = "agent-worker"
_RETRIES = 5
# The gateway's answer that means "this job must not join": the session is over, another job has
# it, or its dispatch was replaced. (A room the gateway has no session for, 404, is not its call.)
_NOT_WANTED = 409


def worker_token(settings: WorkerSettings, grants: api.VideoGrants) -> str:
    """A short-lived LiveKit-signed token: the gateway verifies it with the same LiveKit secret,
    so no other shared secret is needed."""
    return (
        api.AccessToken(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())
        .with_identity(WORKER_IDENTITY)
        .with_grants(grants)
        .with_ttl(timedelta(minutes=5))
        .to_jwt()
    )


class GatewayClient:
    def __init__(self, settings: WorkerSettings, room_name: str) -> None:
        self._settings = settings
        self._room = room_name
        self._base = f"{settings.gateway_url.rstrip('/')}/internal/v1/sessions/{room_name}"
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._reports: set[asyncio.Task[int | None]] = set()

    def start(self) -> None:
        self._sender = asyncio.create_task(self._send_loop(), name=f"transcripts:{self._room}")

    async def claim_job(
        self, *, session_id: str, attempt: int, job_id: str, worker_id: str
    ) -> bool:
        """Whether this job may join. Only the gateway's explicit no stops it: when the gateway
        cannot be reached the job joins anyway, since a caller waits on the other side."""
        status = await self._post(
            "/job",
            {"sessionId": session_id, "attempt": attempt, "jobId": job_id, "workerId": worker_id},
        )
        return status != _NOT_WANTED

    def add_segment(self, segment: dict[str, Any]) -> None:
        self._queue.put_nowait(segment)

    def first_agent_audio(self, at: float) -> None:
        """For the session's setup timeline; sent in the background."""
        stamp = datetime.fromtimestamp(at, UTC).isoformat()
        task = asyncio.create_task(
            self._post("/first-agent-audio", {"at": stamp}), name=f"first-audio:{self._room}"
        )
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def agent_failed(self, error: str) -> None:
        await self._post("/agent-failed", {"error": error})

    async def call_answered(self) -> None:
        await self._post("/answered", {})

    async def escalate(self, flush_timeout: float = 5.0) -> None:
        """The transcript so far goes first: the gateway's webhook carries it."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), flush_timeout)
        await self._post("/escalate", {})

    async def aclose(self, *, flush_timeout: float = 5.0) -> None:
        # Keyword-only on purpose: livekit-agents passes the shutdown reason as the first
        # positional argument to a shutdown callback that takes one.
        if self._sender is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), flush_timeout)
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        if self._reports:
            await asyncio.wait(self._reports, timeout=flush_timeout)
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

    async def _post(self, path: str, body: dict[str, Any]) -> int | None:
        """The gateway's status (retried while it is 5xx or unreachable), None when it never
        answered."""
        delay = 0.2
        status: int | None = None
        for attempt in range(1, _RETRIES + 1):
            try:
                async with self._http.post(
                    self._base + path,
                    json=body,
                    headers={"Authorization": f"Bearer {self._token()}"},
                ) as resp:
                    status = resp.status
                    if resp.status < 500:
                        if resp.status >= 400:
                            log.warning("gateway_rejected_report", path=path, status=resp.status)
                        return status
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning(
                    "gateway_report_failed", path=path, attempt=attempt, error=type(exc).__name__
                )
            await asyncio.sleep(delay)
            delay *= 2
        log.error("gateway_report_dropped", path=path)
        return status

    def _token(self) -> str:
        return worker_token(self._settings, api.VideoGrants(room=self._room, room_admin=True))
