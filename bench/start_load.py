"""Measure 1: /v1/sessions/start under load, beside its ceiling and its floor, in one run.

- ceiling: a bare aiohttp handler parsing the same JSON, in its own process (bench/ceiling.py);
- floor: LiveKit's CreateRoom + CreateDispatch called directly with livekit-api, the work every
  /start must cause whatever the gateway does (the issue's floor: two calls);
- floor_one: the same room and dispatch in one call (CreateRoom with `agents`), as the gateway
  makes them: the floor it cannot go below;
- gateway: the real /start (key check, store writes, room, dispatch, token), twice: on SQLite
  (gateway) and on PostgreSQL (gateway_pg, a throwaway server from devstack.postgres).

The gateway dispatches to an agent name no worker serves, so hundreds of rooms get no agent; every
room is deleted after each run. Before the load, the same gateway is timed refusing starts while no
worker has reported (bench/no_worker.py); then a stand-in reports capacity for that name, and the
dispatch watch is told to wait longer than the run, so it re-dispatches nothing mid-measure.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from livekit import api

from bench.load import LoadResult, run_load
from bench.no_worker import FakeWorkerReports, NoWorkerResult, measure_no_worker
from bench.stats import ratio
from devstack.livekit_server import REPO
from devstack.ports import free_port
from devstack.postgres import PostgresServer
from devstack.stack import Stack
from voice_common.agent_config import DispatchMetadata
from voice_gateway.catalogue import AgentCatalogue
from voice_gateway.config import DEFAULT_CATALOGUE, GatewaySettings

UNSERVED_AGENT = "bench-no-worker"
AGENT_ID = "demo"
# The gateway twice, on its two stores: SQLite (the default) and PostgreSQL (production).
TARGETS = ("ceiling", "floor", "floor_one", "gateway", "gateway_pg")
GATEWAYS = ("gateway", "gateway_pg")


@dataclass
class Level:
    concurrency: int
    results: dict[str, LoadResult] = field(default_factory=dict)

    def p50(self, target: str) -> float | None:
        s = self.results[target].summary if target in self.results else None
        return s.p50 if s else None

    def rps(self, target: str) -> float | None:
        r = self.results.get(target)
        return r.throughput if r and r.ok else None

    def vs_ceiling(self, gateway: str = "gateway") -> float | None:
        return ratio(self.rps(gateway), self.rps("ceiling"))

    def vs_floor(self, gateway: str = "gateway") -> float | None:
        return ratio(self.rps(gateway), self.rps("floor"))

    def added_p50_ms(self, gateway: str = "gateway", floor: str = "floor") -> float | None:
        gw, base = self.p50(gateway), self.p50(floor)
        return None if gw is None or base is None else gw - base

    @property
    def gateway_vs_ceiling(self) -> float | None:
        return self.vs_ceiling()

    @property
    def gateway_vs_floor(self) -> float | None:
        return self.vs_floor()

    @property
    def gateway_added_p50_ms(self) -> float | None:
        return self.added_p50_ms()

    def as_dict(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "results": {k: v.as_dict() for k, v in self.results.items()},
            "gateway_vs_ceiling_throughput": self.gateway_vs_ceiling,
            "gateway_vs_floor_throughput": self.gateway_vs_floor,
            "gateway_added_p50_ms": self.gateway_added_p50_ms,
            "gateway_pg_vs_floor_throughput": self.vs_floor("gateway_pg"),
            "gateway_pg_added_p50_ms": self.added_p50_ms("gateway_pg"),
            "gateway_added_p50_ms_vs_one_call_floor": self.added_p50_ms("gateway", "floor_one"),
        }


def _dispatch_metadata() -> str:
    config = AgentCatalogue.load(DEFAULT_CATALOGUE).get(AGENT_ID)
    assert config is not None, f"the catalogue has no {AGENT_ID!r} agent"
    return DispatchMetadata(
        session_id=f"ses_{secrets.token_hex(12)}",
        agent_id=AGENT_ID,
        user_identity="bench-user",
        config=config,
    ).model_dump_json(by_alias=True)


def _gateway_default(name: str) -> Any:
    return GatewaySettings.model_fields[name].default


class Ceiling:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.ceiling", str(self.port)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        raise TimeoutError("the ceiling server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


async def measure_start(
    *, levels: list[int], requests: int, time_cap_s: float, log_dir: Any, refusals: int
) -> tuple[list[Level], NoWorkerResult]:
    stack = Stack(
        api_key=f"vgw_sk_{secrets.token_urlsafe(32)}",
        agent_name=UNSERVED_AGENT,
        log_dir=log_dir,
        extra_gateway_env={"VOICEGW_DISPATCH_ASSIGN_TIMEOUT_SECONDS": "3600"},
        phone=False,  # one LiveKit node, no Redis or SIP service: /start alone is measured
    )
    ceiling = Ceiling()
    postgres = PostgresServer()
    # The same gateway on PostgreSQL, beside the SQLite one, on the same LiveKit.
    pg_dir = log_dir / "postgres-gateway"
    pg_dir.mkdir(exist_ok=True)
    pg_stack = Stack(
        api_key=stack.api_key,
        agent_name=UNSERVED_AGENT,
        log_dir=pg_dir,
        extra_gateway_env=stack.extra_gateway_env,
        phone=False,
    )
    # Both gateways hear LiveKit's webhooks (each ignores the other's rooms).
    stack.livekit.webhook_urls.append(f"{pg_stack.gateway_url}/v1/livekit/webhook")
    try:
        stack.livekit.start()
        stack.start_gateway()
        postgres.start()
        pg_stack.database_url = postgres.url
        pg_stack.livekit = stack.livekit
        pg_stack.start_gateway()
        ceiling.start()
        no_worker = await measure_no_worker(stack, requests=refusals)
        async with (
            FakeWorkerReports(stack, UNSERVED_AGENT),
            FakeWorkerReports(pg_stack, UNSERVED_AGENT),
        ):
            levels_out = await _run_levels(
                {"gateway": stack, "gateway_pg": pg_stack}, ceiling, levels, requests, time_cap_s
            )
        return levels_out, no_worker
    finally:
        ceiling.stop()
        pg_stack.stop_gateway()
        stack.stop()
        postgres.stop()


async def _run_levels(
    gateways: dict[str, Stack],
    ceiling: Ceiling,
    levels: list[int],
    requests: int,
    time_cap_s: float,
) -> list[Level]:
    stack = gateways["gateway"]
    body = {"agentId": AGENT_ID, "userIdentity": "bench-user"}
    headers = {"x-api-key": stack.api_key}
    metadata = _dispatch_metadata()
    out: list[Level] = []
    for concurrency in levels:
        level = Level(concurrency)
        for target in TARGETS:
            connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
            timeout = aiohttp.ClientTimeout(total=30)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
                lk = api.LiveKitAPI(
                    stack.livekit.http_url,
                    stack.livekit.api_key,
                    stack.livekit.api_secret,
                    session=http,
                    failover=False,
                )
                call = _caller(
                    target, http, lk, gateways.get(target, stack), ceiling, body, headers, metadata
                )
                level.results[target] = await run_load(
                    target,
                    call,
                    concurrency=concurrency,
                    requests=requests,
                    time_cap_s=time_cap_s,
                    warmup=max(4, min(concurrency, 16)),
                )
                if target != "ceiling":
                    await _delete_all_rooms(lk)
        out.append(level)
        _progress(level)
    return out


def _caller(
    target: str,
    http: aiohttp.ClientSession,
    lk: api.LiveKitAPI,
    stack: Stack,
    ceiling: Ceiling,
    body: dict[str, str],
    headers: dict[str, str],
    metadata: str,
) -> Any:
    async def post(url: str, index: int) -> None:
        async with http.post(url, json=body, headers=headers) as resp:
            payload = await resp.read()
            if resp.status != 201:
                raise RuntimeError(f"status {resp.status}: {payload[:200]!r}")

    async def gateway(index: int) -> None:
        await post(f"{stack.gateway_url}/v1/sessions/start", index)

    async def bare(index: int) -> None:
        await post(f"{ceiling.url}/v1/sessions/start", index)

    def room_request(name: str, agents: list[api.RoomAgentDispatch]) -> api.CreateRoomRequest:
        """The room as the gateway asks for it."""
        return api.CreateRoomRequest(
            name=name,
            empty_timeout=_gateway_default("room_empty_timeout_seconds"),
            departure_timeout=_gateway_default("room_departure_timeout_seconds"),
            max_participants=8,
            metadata=json.dumps({"sessionId": f"ses_{secrets.token_hex(12)}"}),
            agents=agents,
        )

    async def floor(index: int) -> None:
        room = f"bench-floor-{secrets.token_hex(6)}"
        await lk.room.create_room(room_request(room, []))
        await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=UNSERVED_AGENT, room=room, metadata=metadata)
        )

    async def floor_one(index: int) -> None:
        agent = api.RoomAgentDispatch(agent_name=UNSERVED_AGENT, metadata=metadata)
        await lk.room.create_room(room_request(f"bench-floor-{secrets.token_hex(6)}", [agent]))

    return {"ceiling": bare, "floor": floor, "floor_one": floor_one}.get(target, gateway)


async def _delete_all_rooms(lk: api.LiveKitAPI) -> None:
    rooms = (await lk.room.list_rooms(api.ListRoomsRequest())).rooms
    sem = asyncio.Semaphore(8)

    async def delete(name: str) -> None:
        async with sem:
            try:
                await lk.room.delete_room(api.DeleteRoomRequest(room=name))
            except api.TwirpError:
                pass  # already gone

    await asyncio.gather(*(delete(r.name) for r in rooms))
    await asyncio.sleep(1.0)  # let the room_finished webhooks reach the gateway before timing on


def _progress(level: Level) -> None:
    parts = [
        f"{t} {level.results[t].throughput:.0f}/s p50 "
        f"{(s.p50 if (s := level.results[t].summary) else float('nan')):.1f} ms"
        for t in TARGETS
    ]
    print(f"  /start c={level.concurrency}: " + ", ".join(parts), file=sys.stderr, flush=True)
