"""The public session API as an app calls it, timed: /start with its wall-clock answer time."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Started:
    room_name: str
    user_identity: str
    livekit_url: str
    user_token: str
    start_ms: float
    answered_wall: float  # time.time() when the answer arrived, to compare with LiveKit stamps
    answered_mono: float


class GatewayApi:
    def __init__(self, base_url: str, api_key: str) -> None:
        self._base = base_url
        self._headers = {"x-api-key": api_key}
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))

    async def start(self, **body: Any) -> Started:
        t0 = time.perf_counter()
        async with self._http.post(
            f"{self._base}/v1/sessions/start", json=body, headers=self._headers
        ) as resp:
            payload = await resp.json(content_type=None)
            answered_wall, answered_mono = time.time(), time.monotonic()
            if resp.status != 201:
                raise RuntimeError(f"/start answered {resp.status}: {payload}")
        return Started(
            room_name=payload["roomName"],
            user_identity=payload["userIdentity"],
            livekit_url=payload["livekitUrl"],
            user_token=payload["userToken"],
            start_ms=(time.perf_counter() - t0) * 1000,
            answered_wall=answered_wall,
            answered_mono=answered_mono,
        )

    async def end(self, room_name: str) -> None:
        async with self._http.post(
            f"{self._base}/v1/sessions/end", json={"roomName": room_name}, headers=self._headers
        ) as resp:
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"/end answered {resp.status}")

    async def aclose(self) -> None:
        await self._http.close()
