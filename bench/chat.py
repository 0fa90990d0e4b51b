"""`python -m bench.chat [--turns N]`: how fast a typed turn is answered, by each way of asking.

Starts a gateway of its own (SQLite, no LiveKit or worker: text needs neither) and asks the demo
agent (offline responder) the same questions, round-robin across the ways, so every way meets the
same machine load: a chat session's message as JSON and as server-sent events (first delta and
completed), and an OpenAI-compatible completion, plain and streamed. `GET /healthz` is asked in
the same rounds as the baseline of one HTTP round trip; each way is also given as a ratio of it.
Prints a markdown table; bounded by --turns (default 40) and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bench.stats import fmt, fmt_ratio, markdown_table, ratio, summarize
from devstack.stack import Stack

QUESTIONS = ("When are you open?", "How much does the basic plan cost?", "Where is your office?")
BASELINE = "GET /healthz (one round trip)"


class Asker:
    def __init__(self, http: aiohttp.ClientSession, base: str, key: str) -> None:
        self.http, self.base = http, base
        self.headers = {"x-api-key": key}
        self.session_id = ""

    async def open(self) -> None:
        async with self.http.post(
            f"{self.base}/v1/chat/sessions", json={"agentId": "demo"}, headers=self.headers
        ) as resp:
            assert resp.status == 201, await resp.text()
            self.session_id = (await resp.json())["sessionId"]

    async def close(self) -> None:
        async with self.http.post(
            f"{self.base}/v1/chat/sessions/{self.session_id}/end", headers=self.headers
        ) as resp:
            await resp.read()

    async def healthz(self, _q: str) -> dict[str, float]:
        t0 = time.perf_counter()
        async with self.http.get(f"{self.base}/healthz") as resp:
            await resp.read()
            assert resp.status == 200
        return {BASELINE: time.perf_counter() - t0}

    async def message_json(self, q: str) -> dict[str, float]:
        t0 = time.perf_counter()
        async with self.http.post(
            f"{self.base}/v1/chat/sessions/{self.session_id}/messages",
            json={"text": q},
            headers=self.headers,
        ) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        return {"chat message, JSON (whole reply)": time.perf_counter() - t0}

    async def message_sse(self, q: str) -> dict[str, float]:
        headers = {**self.headers, "Accept": "text/event-stream"}
        url = f"{self.base}/v1/chat/sessions/{self.session_id}/messages"
        return await self._events(
            url,
            {"text": q},
            headers,
            first="event: message.delta",
            last="event: message.completed",
            names=("chat message, SSE first delta", "chat message, SSE completed"),
        )

    async def completion(self, q: str) -> dict[str, float]:
        t0 = time.perf_counter()
        async with self.http.post(
            f"{self.base}/v1/chat/completions",
            json={"model": "demo", "messages": [{"role": "user", "content": q}]},
            headers=self.headers,
        ) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        return {"completion, JSON": time.perf_counter() - t0}

    async def completion_stream(self, q: str) -> dict[str, float]:
        body = {"model": "demo", "stream": True, "messages": [{"role": "user", "content": q}]}
        return await self._events(
            f"{self.base}/v1/chat/completions",
            body,
            self.headers,
            first='"content":"',
            last="data: [DONE]",
            names=("completion, streamed first content", "completion, streamed [DONE]"),
        )

    async def _events(
        self,
        url: str,
        body: dict[str, Any],
        headers: dict[str, str],
        *,
        first: str,
        last: str,
        names: tuple[str, str],
    ) -> dict[str, float]:
        t0 = time.perf_counter()
        seen: dict[str, float] = {}
        async with self.http.post(url, json=body, headers=headers) as resp:
            assert resp.status == 200, resp.status
            async for raw in resp.content:
                line = raw.decode()
                if names[0] not in seen and first in line and '"content":""' not in line:
                    seen[names[0]] = time.perf_counter() - t0
                if line.startswith(last):
                    seen[names[1]] = time.perf_counter() - t0
                    break
        assert len(seen) == 2, seen
        return seen


async def measure(stack: Stack, turns: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        asker = Asker(http, stack.gateway_url, stack.api_key)
        await asker.open()
        ways: list[Callable[[str], Awaitable[dict[str, float]]]] = [
            asker.healthz,
            asker.message_json,
            asker.message_sse,
            asker.completion,
            asker.completion_stream,
        ]
        for _ in range(2):  # warm-up: imports, the first connections, the store's caches
            for way in ways:
                await way(QUESTIONS[0])
        for n in range(turns):
            question = QUESTIONS[n % len(QUESTIONS)]
            for way in ways[n % len(ways) :] + ways[: n % len(ways)]:  # rotate the order
                for name, seconds in (await way(question)).items():
                    samples.setdefault(name, []).append(seconds * 1000)
        await asker.close()
    return samples


def table(samples: dict[str, list[float]]) -> str:
    base = summarize(samples[BASELINE])
    rows = []
    for name, values in samples.items():
        s = summarize(values)
        assert s is not None and base is not None
        rows.append([name, s.n, fmt(s.p50, 1), fmt(s.p95, 1), fmt_ratio(ratio(s.p50, base.p50))])
    return markdown_table(["way", "n", "p50 ms", "p95 ms", "p50 / healthz p50"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chat", description=__doc__)
    parser.add_argument("--turns", type=int, default=40, help="rounds of every way (1-500)")
    args = parser.parse_args()
    turns = max(1, min(args.turns, 500))
    stack = Stack(api_key=f"vgw_sk_{secrets.token_urlsafe(32)}")
    stack.start_gateway()  # text needs no LiveKit and no worker
    try:
        samples = asyncio.run(measure(stack, turns))
    finally:
        stack.stop_gateway()
    print(table(samples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
