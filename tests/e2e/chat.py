"""The chat API as an app calls it: JSON with aiohttp, and streamed replies read by a real SSE
parser (sseclient-py over a streaming `requests` response) as they arrive."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import requests
from sseclient import SSEClient

from tests.e2e.conftest import Gateway


@dataclass
class Streamed:
    status: int
    headers: dict[str, str]
    events: list[tuple[str, Any]]  # (event, parsed data), in the order they arrived
    body: Any = None  # the JSON answer when the stream never opened (an error)

    def of(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]


class ChatApi:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.url = gateway.stack.gateway_url

    def _headers(self, key: str | None, origin: str | None) -> dict[str, str]:
        headers = {"x-api-key": self.gateway.stack.api_key if key is None else key}
        if origin:
            headers["Origin"] = origin
        return headers

    async def create(
        self, *, key: str | None = None, origin: str | None = None, **body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        async with self.gateway.http.post(
            f"{self.url}/v1/chat/sessions", json=body, headers=self._headers(key, origin)
        ) as resp:
            return resp.status, await resp.json(), dict(resp.headers)

    async def send(
        self, session_id: str, body: Any, *, key: str | None = None, origin: str | None = None
    ) -> tuple[int, Any]:
        async with self.gateway.http.post(
            f"{self.url}/v1/chat/sessions/{session_id}/messages",
            json=body,
            headers=self._headers(key, origin),
        ) as resp:
            return resp.status, await resp.json()

    async def history(
        self, session_id: str, *, key: str | None = None, origin: str | None = None
    ) -> tuple[int, Any]:
        async with self.gateway.http.get(
            f"{self.url}/v1/chat/sessions/{session_id}/messages",
            headers=self._headers(key, origin),
        ) as resp:
            return resp.status, await resp.json()

    async def end(
        self, session_id: str, *, key: str | None = None, origin: str | None = None
    ) -> tuple[int, Any]:
        async with self.gateway.http.post(
            f"{self.url}/v1/chat/sessions/{session_id}/end", headers=self._headers(key, origin)
        ) as resp:
            return resp.status, await resp.json()

    async def stream(
        self, session_id: str, text: str, *, key: str | None = None, origin: str | None = None
    ) -> Streamed:
        headers = {**self._headers(key, origin), "Accept": "text/event-stream"}
        url = f"{self.url}/v1/chat/sessions/{session_id}/messages"
        return await asyncio.to_thread(_stream, url, {"text": text}, headers)


async def publishable_key(gateway: Gateway, name: str, origin: str) -> dict[str, Any]:
    """A web page's key for the demo agent, from one origin (revoke it when done)."""
    status, key, _ = await gateway.post(
        "/v1/keys",
        {"name": name, "kind": "publishable", "agentIds": ["demo"], "allowedOrigins": [origin]},
    )
    assert status == 201, key
    return key  # type: ignore[no-any-return]


def _stream(url: str, body: dict[str, Any], headers: dict[str, str]) -> Streamed:
    with requests.post(url, json=body, headers=headers, stream=True, timeout=60) as resp:
        if not resp.headers.get("Content-Type", "").startswith("text/event-stream"):
            return Streamed(resp.status_code, dict(resp.headers), [], resp.json())
        events = [
            (e.event, json.loads(e.data))
            for e in SSEClient(resp.iter_content(chunk_size=None)).events()
        ]
        return Streamed(resp.status_code, dict(resp.headers), events)
