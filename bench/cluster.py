"""`python -m bench.cluster`: one of each against two of each, side by side in one run.

"One of each" and "two of each" are the same cluster mode (devstack/cluster.py: LiveKit on Redis,
gateways on PostgreSQL behind a balancer, workers) with `size` 1 and 2, on the same machine. Two
measures, each bounded in count and time:

- starts/s: closed-loop POST /v1/sessions/start through the gateways' one address, for an agent no
  worker serves (LiveKit keeps the dispatch; no job runs), so it measures gateways, PostgreSQL and
  LiveKit, not the voice pipeline;
- sessions held: callers (light LiveKit clients) open sessions one a second; a session is held when
  its caller has met the agent and still has it after the hold.

Both configurations share this machine's two cores: a second gateway or worker gets no CPU of its
own, so the ratio shows what the extra processes cost or buy on one host, not what a second
machine would add.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.load import LoadResult, run_load
from bench.stats import markdown_table
from devstack.cluster import Cluster
from devstack.voice_client import VoiceClient

UNSERVED_AGENT = "bench-no-worker"
START_ENV = {
    "VOICEGW_AGENT_NAME": UNSERVED_AGENT,
    "VOICEGW_AGENT_CAPACITY_CHECK": "false",
    "VOICEGW_DISPATCH_ASSIGN_TIMEOUT_SECONDS": "3600",
    "VOICEGW_KEY_RATE_LIMIT_PER_MINUTE": "100000",
    "VOICEGW_LOG_LEVEL": "WARNING",
}


@dataclass
class Run:
    size: int
    starts: LoadResult | None = None
    held: int = 0
    opened: int = 0
    agent_wait_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0


async def measure(size: int, args: argparse.Namespace) -> Run:
    run = Run(size)
    began = time.monotonic()
    cluster = Cluster(
        size=size,
        log_dir=Path(tempfile.mkdtemp(prefix=f"voicegw-bench-cluster{size}-")),
        extra_gateway_env=dict(START_ENV),
        extra_worker_env={"AGENT_WORKER_NUM_IDLE_PROCESSES": "1"},
    )
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, lambda: cluster.start(workers=False))
        run.starts = await _starts(cluster, args)
        # The sessions phase serves the real agent: the gateways come back with its name.
        for key in ("VOICEGW_AGENT_NAME", "VOICEGW_AGENT_CAPACITY_CHECK"):
            cluster.extra_gateway_env.pop(key)
        for i in range(size):
            await loop.run_in_executor(None, cluster.kill_gateway, i)
            await loop.run_in_executor(None, cluster.start_gateway, i)
        for i in range(size):
            await loop.run_in_executor(None, cluster.start_worker, i)
        await _sessions(cluster, args, run)
    finally:
        await loop.run_in_executor(None, cluster.stop)
    run.wall_s = time.monotonic() - began
    return run


async def _starts(cluster: Cluster, args: argparse.Namespace) -> LoadResult:
    headers = {"x-api-key": cluster.api_key}
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as http:

        async def start(index: int) -> None:
            body = {"agentId": "demo", "userIdentity": f"bench-{index}"}
            async with http.post(
                f"{cluster.gateway_url}/v1/sessions/start", json=body, headers=headers
            ) as resp:
                payload = await resp.read()
                if resp.status != 201:
                    raise RuntimeError(f"status {resp.status}: {payload[:200]!r}")

        return await run_load(
            f"{cluster.size} of each",
            start,
            concurrency=args.concurrency,
            requests=args.requests,
            time_cap_s=60,
            warmup=8,
        )


async def _sessions(cluster: Cluster, args: argparse.Namespace, run: Run) -> None:
    headers = {"x-api-key": cluster.api_key}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:

        async def caller(i: int) -> bool:
            await asyncio.sleep(i)  # one new caller a second
            async with http.post(
                f"{cluster.gateway_url}/v1/sessions/start",
                json={"agentId": "demo", "userIdentity": f"held-{i}"},
                headers=headers,
            ) as resp:
                body: dict[str, Any] = await resp.json()
                if resp.status != 201:
                    return False
            run.opened += 1
            client = VoiceClient()
            t0 = time.monotonic()
            try:
                await client.join(body["livekitUrl"], body["userToken"], subscribe=False)
                await client.wait_for_agent(within=args.agent_wait)
                run.agent_wait_s.append(time.monotonic() - t0)
                await asyncio.sleep(args.hold + (args.sessions - i))  # all overlap at the end
                return bool(client.agent_identities) and not client.disconnected.is_set()
            except (AssertionError, TimeoutError):
                return False
            finally:
                await client.leave()
                async with http.post(
                    f"{cluster.gateway_url}/v1/sessions/end",
                    json={"roomName": body["roomName"]},
                    headers=headers,
                ) as resp:
                    await resp.read()

        results = await asyncio.gather(
            *(caller(i) for i in range(args.sessions)), return_exceptions=True
        )
        run.held = sum(1 for r in results if r is True)


def render(runs: list[Run], args: argparse.Namespace) -> str:
    one, two = runs
    rows = []
    for r in runs:
        s = r.starts.summary if r.starts else None
        rows.append(
            [
                f"{r.size} of each",
                f"{r.starts.throughput:.1f}" if r.starts else "-",
                f"{s.p50:.0f} / {s.p99:.0f}" if s else "-",
                r.starts.errors if r.starts else "-",
                f"{r.held} / {args.sessions}",
                f"{sorted(r.agent_wait_s)[len(r.agent_wait_s) // 2]:.1f}"
                if r.agent_wait_s
                else "-",
                f"{r.wall_s:.0f}",
            ]
        )
    ratio = (
        f"{two.starts.throughput / one.starts.throughput:.2f}x"
        if one.starts and two.starts and one.starts.throughput
        else "-"
    )
    table = markdown_table(
        [
            "cluster",
            f"starts/s (c={args.concurrency})",
            "start p50 / p99 ms",
            "start errors",
            "sessions held",
            "agent wait p50 s",
            "wall s",
        ],
        rows,
    )
    return f"{table}\n\nstarts/s, two of each / one of each: {ratio}\n"


async def main_async(args: argparse.Namespace) -> list[Run]:
    return [await measure(size, args) for size in (1, 2)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--hold", type=float, default=10)
    parser.add_argument("--agent-wait", type=float, default=45)
    args = parser.parse_args(argv)
    runs = asyncio.run(main_async(args))
    print(render(runs, args))
    print(json.dumps([{**r.__dict__, "starts": r.starts and r.starts.as_dict()} for r in runs]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
