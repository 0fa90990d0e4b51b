"""Tells the gateway what this worker can take, so /start can refuse at once when no worker could
(LiveKit would drop the dispatch with only a log line).

Runs in the worker's main process: a report every `report_interval_seconds`, another as soon as
the number of live sessions changes, and one at once when SIGTERM starts the drain, so no gateway
replica counts a draining worker's slots. The gateway stores the reports in its database; one it
has not heard from in a few seconds no longer counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Protocol

import aiohttp
import structlog
from livekit import api

from agent_worker.config import WorkerSettings
from agent_worker.gateway_client import worker_token

log = structlog.get_logger("agent_worker.capacity")

FIRST_REPORT_MARK = "capacity_reported"  # logged once the gateway has taken the first report
_TICK_SECONDS = 0.1


class _Server(Protocol):
    @property
    def active_jobs(self) -> list[Any]: ...


class CapacityReporter:
    def __init__(self, settings: WorkerSettings, server: _Server) -> None:
        self._settings = settings
        self._server = server
        self._worker_id: str | None = None
        self._draining = False
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._reported_once = False
        self._lock = asyncio.Lock()

    def registered(self, worker_id: str, _server_info: object = None) -> None:
        """The `worker_registered` event: LiveKit named this worker (again, after a reconnect)."""
        self._worker_id = worker_id
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="capacity-report")

    async def draining(self) -> None:
        """Called before the drain begins: zero capacity, reported now, not at the next tick."""
        self._draining = True
        await self._report()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._http is not None:
            await self._http.close()

    def _live_sessions(self) -> int:
        return len(self._server.active_jobs)

    async def _run(self) -> None:
        last: tuple[int, bool] | None = None
        last_at = 0.0
        while True:
            state = (self._live_sessions(), self._draining)
            due = time.monotonic() - last_at >= self._settings.report_interval_seconds
            if state != last or due:
                if await self._report():
                    last = state
                last_at = time.monotonic()
            await asyncio.sleep(_TICK_SECONDS)

    async def _report(self) -> bool:
        if self._worker_id is None:
            return False
        async with self._lock:
            if self._http is None:
                self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
            url = (
                f"{self._settings.gateway_url.rstrip('/')}/internal/v1/workers/"
                f"{self._worker_id}/report"
            )
            body = {
                "agentName": self._settings.agent_name,
                "liveSessions": self._live_sessions(),
                "maxSessions": self._settings.max_sessions,
                "draining": self._draining,
            }
            token = worker_token(self._settings, api.VideoGrants(agent=True))
            try:
                async with self._http.post(
                    url, json=body, headers={"Authorization": f"Bearer {token}"}
                ) as resp:
                    ok = resp.status < 300
                    if not ok:
                        log.warning("capacity_report_rejected", status=resp.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("capacity_report_failed", error=type(exc).__name__)
                return False
            if ok and not self._reported_once:
                self._reported_once = True
                log.info(FIRST_REPORT_MARK, worker_id=self._worker_id)
            return ok
