"""Measure: /start while no worker can take a session, and the capacity a bench worker reports.

With no worker reporting, /start must refuse (503 no_agent_available) before it creates anything;
the bench times that answer and checks LiveKit for rooms it might have left.

The /start load measure dispatches to an agent name no worker serves (so hundreds of rooms get no
agent). The gateway's capacity pre-flight would refuse those starts; `FakeWorkerReports` reports
capacity for that name through the real internal API, as a worker would, so the pre-flight's read
stays in the measured path.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
from livekit import api

from bench.stats import Summary, summarize
from devstack.stack import Stack

REPORT_INTERVAL_S = 2.0


@dataclass
class NoWorkerResult:
    latencies_ms: list[float] = field(default_factory=list)
    other_answers: dict[str, int] = field(default_factory=dict)  # anything but a 503 refusal
    retry_after: str | None = None
    rooms_left: int = 0

    @property
    def summary(self) -> Summary | None:
        return summarize(self.latencies_ms)

    def as_dict(self) -> dict[str, Any]:
        s = self.summary
        return {
            "refused": len(self.latencies_ms),
            "other_answers": self.other_answers,
            "retry_after": self.retry_after,
            "rooms_left": self.rooms_left,
            "latency_ms": s.as_dict() if s else None,
        }


async def measure_no_worker(stack: Stack, *, requests: int) -> NoWorkerResult:
    """`requests` starts one after another against a gateway that has heard from no worker."""
    result = NoWorkerResult()
    headers = {"x-api-key": stack.api_key}
    body = {"agentId": "demo", "userIdentity": "bench-nobody"}
    lk = api.LiveKitAPI(
        stack.livekit.http_url, stack.livekit.api_key, stack.livekit.api_secret, failover=False
    )
    try:
        before = {r.name for r in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            for _ in range(requests + 3):  # three unrecorded: the first requests warm up
                t0 = time.perf_counter()
                async with http.post(
                    f"{stack.gateway_url}/v1/sessions/start", json=body, headers=headers
                ) as resp:
                    payload = await resp.json(content_type=None)
                ms = (time.perf_counter() - t0) * 1000
                code = payload.get("error", {}).get("code") if isinstance(payload, dict) else None
                if resp.status == 503 and code == "no_agent_available":
                    result.latencies_ms.append(ms)
                    result.retry_after = resp.headers.get("Retry-After")
                else:
                    what = f"{resp.status} {code}"
                    result.other_answers[what] = result.other_answers.get(what, 0) + 1
        del result.latencies_ms[:3]
        after = {r.name for r in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms}
        result.rooms_left = len(after - before)
    finally:
        await lk.aclose()
    return result


class FakeWorkerReports:
    """Reports free capacity for `agent_name` every 2 s, with a LiveKit-signed worker token."""

    def __init__(self, stack: Stack, agent_name: str, max_sessions: int = 100_000) -> None:
        self._url = f"{stack.gateway_url}/internal/v1/workers/AW_bench/report"
        self._body = {
            "agentName": agent_name,
            "liveSessions": 0,
            "maxSessions": max_sessions,
            "draining": False,
        }
        self._token = (
            api.AccessToken(stack.livekit.api_key, stack.livekit.api_secret)
            .with_identity("agent-worker")
            .with_grants(api.VideoGrants(agent=True))
            .with_ttl(timedelta(hours=2))
            .to_jwt()
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> FakeWorkerReports:
        await self._report()
        self._task = asyncio.create_task(self._run(), name="bench-fake-worker-reports")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(REPORT_INTERVAL_S)
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, RuntimeError):
                await self._report()

    async def _report(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            async with http.post(
                self._url, json=self._body, headers={"Authorization": f"Bearer {self._token}"}
            ) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"the gateway refused the capacity report: {resp.status}")
