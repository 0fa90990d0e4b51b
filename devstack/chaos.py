"""`make chaos`: kill each component of the cluster under live sessions, then count what was lost.

Light callers (real LiveKit clients) keep starting sessions through the gateways' one address,
join, ask a short spoken question, hold the line, then hang up (POST /v1/sessions/end) or just
leave. Meanwhile the schedule kills, one at a time, each restarted after: a worker (SIGKILL of its
whole process group, then a SIGTERM drain of the other), a gateway replica, a LiveKit node and the
PostgreSQL server. When the callers stop, the run waits for the reaper's window and prints one JSON
line whose counters are read from real state: every node's ListRooms, the sessions table, the
deliveries a webhook receiver recorded, and what each caller saw in its room.

Bounded: fixed counts and times (about six minutes with start-up), loopback only, stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import math
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import asyncpg
from livekit import api, rtc

from devstack.cluster import Cluster
from devstack.livekit_server import LiveKitServer
from devstack.voice_client import VoiceClient
from devstack.webhook_receiver import WebhookReceiver

T = TypeVar("T")
QUESTIONS = [
    "What are your opening hours?",
    "Can you tell me where my order is?",
    "I would like to change my booking, please.",
]
LIVE = ("starting", "active", "ringing")
# Gateway settings of the run: short windows, so the reaper's verdicts come within the run.
GATEWAY_ENV = {
    "VOICEGW_WEBHOOK_ENDED_DELAY_SECONDS": "1",
    "VOICEGW_REAPER_INTERVAL_SECONDS": "1",
    "VOICEGW_ROOM_EMPTY_TIMEOUT_SECONDS": "10",
    "VOICEGW_ROOM_DEPARTURE_TIMEOUT_SECONDS": "2",
    "VOICEGW_ROOM_GRACE_SECONDS": "10",
    "VOICEGW_USER_JOIN_TIMEOUT_SECONDS": "30",
    "VOICEGW_AGENT_JOIN_TIMEOUT_SECONDS": "45",
    "VOICEGW_STUCK_START_SECONDS": "20",
    "VOICEGW_KEY_RATE_LIMIT_PER_MINUTE": "1000",
}
WORKER_ENV = {"AGENT_WORKER_DRAIN_TIMEOUT_SECONDS": "25", "AGENT_WORKER_NUM_IDLE_PROCESSES": "1"}


@dataclass
class Call:
    """One caller's session as the caller lived it (monotonic times)."""

    session_id: str
    room: str
    started: float
    joined: float | None = None
    left: float | None = None
    # (time, number of agents in the room) at every change the caller saw
    agents: list[tuple[float, int]] = field(default_factory=list)
    max_agents: int = 0
    ended_by: str = ""  # hangup | leave | server

    def without_agent(self, start: float, stop: float) -> float:
        """Seconds within [start, stop] the caller was in the room with no agent."""
        if self.joined is None:
            return 0.0
        begin, end = max(start, self.joined), min(stop, self.left or stop)
        total, count, t = 0.0, 0, self.joined
        for at, n in [*self.agents, (math.inf, -1)]:
            lo, hi = max(t, begin), min(at, end)
            if count == 0 and hi > lo:
                total += hi - lo
            t, count = at, n
        return total


@dataclass
class Kill:
    what: str
    at: float  # monotonic
    wall: str
    back_after_s: float = 0.0


class Chaos:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.receiver = WebhookReceiver()
        self.calls: list[Call] = []
        self.start_errors: Counter[str] = Counter()
        self.kills: list[Kill] = []
        self.stopping = asyncio.Event()
        self.cluster: Cluster | None = None
        self.t0 = time.monotonic()
        # Every cluster operation on one thread that lives as long as the run: children die with
        # the thread that started them (devstack/processes.py).
        self._ops = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cluster")
        self._questions: list[Path] = []

    async def op(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._ops, fn, *args)

    def log(self, msg: str) -> None:
        print(f"[chaos {time.monotonic() - self.t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    # --- the run --------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        await self.receiver.start()
        self._questions = self._speak_questions()
        log_dir = Path(self.args.log_dir or tempfile.mkdtemp(prefix="voicegw-chaos-"))
        await self.op(lambda: log_dir.mkdir(parents=True, exist_ok=True))
        self.cluster = Cluster(
            log_dir=log_dir,
            extra_gateway_env={
                **GATEWAY_ENV,
                "VOICEGW_WEBHOOK_URLS": json.dumps([self.receiver.url]),
                "VOICEGW_WEBHOOK_SECRET": secrets.token_urlsafe(24),
            },
            extra_worker_env=WORKER_ENV,
        )
        self.log(f"starting the cluster (logs in {log_dir})")
        try:
            await self.op(self.cluster.start)
            self.log("cluster up; callers start")
            self.t0 = time.monotonic()
            callers = [asyncio.create_task(self.caller(i)) for i in range(self.args.callers)]
            await self.schedule()
            self.stopping.set()
            await asyncio.gather(*callers, return_exceptions=True)
            self.log("callers done; waiting for the reaper's window")
            return await self.settle_and_count()
        finally:
            await self.op(self.cluster.stop)
            await self.receiver.stop()
            self._ops.shutdown()

    def _speak_questions(self) -> list[Path]:
        out = Path(tempfile.mkdtemp(prefix="voicegw-chaos-q-"))
        paths = []
        for i, (text, voice, speed) in enumerate(
            zip(QUESTIONS, ["en-us", "en-gb", "en-us+f3"], [150, 175, 135], strict=True)
        ):
            path = out / f"q{i}.wav"
            subprocess.run(
                ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True
            )
            paths.append(path)
        return paths

    async def schedule(self) -> None:
        """One fault at a time, each component back before the next fault."""
        assert self.cluster is not None
        c = self.cluster
        gap = self.args.gap
        steps: list[tuple[str, Callable[[], None], Callable[[], object]]] = [
            (
                "worker0:SIGKILL",
                lambda: c.kill_worker(0, signal.SIGKILL),
                lambda: c.start_worker(0),
            ),
            (
                "worker1:SIGTERM",
                lambda: c.kill_worker(1, signal.SIGTERM, wait=60),
                lambda: c.start_worker(1),
            ),
            ("gateway0:SIGKILL", lambda: c.kill_gateway(0), lambda: c.start_gateway(0)),
            ("gateway1:SIGKILL", lambda: c.kill_gateway(1), lambda: c.start_gateway(1)),
            ("livekit:SIGKILL", self._kill_busiest_node, self._restart_dead_nodes),
            ("postgres:immediate", c.postgres.kill, c.postgres.revive),
        ]
        await asyncio.sleep(gap)
        for what, kill, restart in steps:
            self.log(f"kill {what}")
            k = Kill(what, time.monotonic(), time.strftime("%H:%M:%S", time.gmtime()))
            self.kills.append(k)
            await self.op(kill)
            await asyncio.sleep(self.args.down)
            await self.op(restart)
            k.back_after_s = round(time.monotonic() - k.at, 1)
            self.log(f"{what} back after {k.back_after_s}s")
            await asyncio.sleep(gap)

    def _kill_busiest_node(self) -> None:
        """The node hosting the most rooms now (Redis's room_node_map): the kill must hit calls."""
        assert self.cluster is not None
        placement = Counter(room_nodes(self.cluster.redis.port).values())
        ids = [node_id(n) for n in self.cluster.nodes]
        busiest = max(range(len(ids)), key=lambda i: placement.get(ids[i] or "", 0))
        self.log(f"rooms per node {dict(placement)}; killing livekit{busiest}")
        self.kills[-1].what = f"livekit{busiest}:SIGKILL"
        self.cluster.kill_node(busiest)

    def _restart_dead_nodes(self) -> None:
        assert self.cluster is not None
        for i, node in enumerate(self.cluster.nodes):
            if node.pid is None:
                self.cluster.start_node(i)

    # --- a caller -------------------------------------------------------------------------

    async def caller(self, n: int) -> None:
        assert self.cluster is not None
        timeout = aiohttp.ClientTimeout(total=40)
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            for i in itertools.count():
                if self.stopping.is_set():
                    return
                try:
                    await self.one_call(http, n, i)
                except Exception as exc:  # a fault may break a call anywhere; the run goes on
                    self.log(f"caller{n}: {type(exc).__name__}: {exc}")
                    await asyncio.sleep(1)

    async def one_call(self, http: aiohttp.ClientSession, n: int, i: int) -> None:
        assert self.cluster is not None
        headers = {"x-api-key": self.cluster.api_key}
        try:
            async with http.post(
                f"{self.cluster.gateway_url}/v1/sessions/start",
                json={"agentId": "demo", "userIdentity": f"caller{n}-{i}"},
                headers=headers,
            ) as resp:
                body = await resp.json(content_type=None)
                if resp.status != 201:
                    code = (body or {}).get("error", {}).get("code", resp.status)
                    self.start_errors[str(code)] += 1
                    await asyncio.sleep(2)
                    return
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.start_errors[type(exc).__name__] += 1
            await asyncio.sleep(2)
            return
        call = Call(body["sessionId"], body["roomName"], time.monotonic())
        self.calls.append(call)
        client = VoiceClient()
        room = client.room

        def count_agents(*_: object) -> None:
            k = len(client.agent_identities)
            call.agents.append((time.monotonic(), k))
            call.max_agents = max(call.max_agents, k)

        def line_broke(*_: object) -> None:
            # Every other caller gives up when its line breaks (its LiveKit node died) instead of
            # letting the SDK reconnect: nobody brings that room back to a live node, so only
            # the gateway's reaper can end it.
            if i % 2 == 1 and not call.ended_by:
                call.ended_by = "line_broke"
                client.disconnected.set()

        room.on("participant_connected", count_agents)
        room.on("participant_disconnected", count_agents)
        room.on("reconnecting", line_broke)
        try:
            await asyncio.wait_for(
                client.join(body["livekitUrl"], body["userToken"], subscribe=False), 20
            )
            call.joined = time.monotonic()
            count_agents()
            hold = self.args.hold
            deadline = time.monotonic() + hold
            await client.wait_for(
                lambda: client.agent_identities or client.disconnected.is_set(), hold, "an agent"
            )
            if client.agent_identities and not client.disconnected.is_set():
                question = self._questions[i % len(self._questions)]
                await asyncio.wait_for(client.speak_wav(question), hold)
            left = deadline - time.monotonic()
            if left > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(client.disconnected.wait(), left)
        except (TimeoutError, AssertionError, rtc.ConnectError) as exc:
            self.log(f"caller{n}: {call.room}: {type(exc).__name__}")
        finally:
            if call.ended_by:
                pass
            elif client.disconnected.is_set():
                call.ended_by = "server"
            elif i % 2 == 0:
                call.ended_by = "hangup"
                try:
                    async with http.post(
                        f"{self.cluster.gateway_url}/v1/sessions/end",
                        json={"roomName": call.room},
                        headers=headers,
                    ) as resp:
                        await resp.read()
                except (aiohttp.ClientError, TimeoutError):
                    pass  # the gateway died under the hang-up; the caller still leaves
            else:
                call.ended_by = "leave"
            call.left = time.monotonic()
            await client.leave()

    # --- the verdict ----------------------------------------------------------------------

    async def settle_and_count(self) -> dict[str, Any]:
        assert self.cluster is not None
        deadline = time.monotonic() + self.args.settle
        while True:
            state = await self.state()
            quiet = not state["live"] and not state["rooms"] and not state["undelivered"]
            if quiet or time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        self.log(f"settled: {len(state['live'])} live, {len(state['rooms'])} rooms")
        rows: dict[str, dict[str, Any]] = state["rows"]
        ids = {c.session_id for c in self.calls}
        ended = [r for r in rows.values() if r["status"] in ("ended", "failed") and r["end_reason"]]
        # Every session the store holds (a start whose answer a killed gateway never sent is one
        # too) and every session a caller was given must be over, with a reason.
        lost = (ids | set(rows)) - {r["id"] for r in ended}
        by_room = {r["room_name"]: r for r in rows.values()}
        rooms_without_record = [
            room for room in state["rooms"] if by_room.get(room, {}).get("status") not in LIVE
        ]
        records_without_room = [r for r in state["live"] if r["room_name"] not in state["rooms"]]
        deliveries = [json.loads(body) for _headers, body in self.receiver.received]
        got = Counter((e["type"], e["data"].get("sessionId", "")) for e in deliveries)
        expected = {("session.started", r["id"]) for r in rows.values() if r["started_at"]}
        expected |= {
            ("session.ended", r["id"])
            for r in rows.values()
            if r["started_at"] and r["status"] in ("ended", "failed")
        }
        return {
            "sessions_started": len(self.calls),
            "sessions_ended": len(ended),
            "sessions_in_store": len(rows),
            "sessions_lost": len(lost),
            "rooms_without_record": len(rooms_without_record),
            "records_without_room_live": len(records_without_room),
            "duplicate_agents": sum(1 for c in self.calls if c.max_agents > 1),
            "webhooks_duplicated": sum(n - 1 for n in got.values() if n > 1),
            "webhooks_missing": len([e for e in expected if got[e] == 0]),
            "webhooks_delivered": len(deliveries),
            "start_errors": dict(self.start_errors),
            "end_reasons": dict(Counter(r["end_reason"] for r in ended)),
            "calls_ended_by": dict(Counter(c.ended_by for c in self.calls)),
            "kills": [
                {
                    "what": k.what,
                    "at": k.wall,
                    "t_s": round(k.at - self.t0, 1),
                    "back_after_s": k.back_after_s,
                    "p95_caller_without_agent_s": self._p95_after(k),
                }
                for k in self.kills
            ],
        }

    def _p95_after(self, kill: Kill) -> float:
        """Time callers live at the kill (or starting within the window after it) spent in their
        room without an agent, from the kill until the window's end."""
        window = self.args.gap + self.args.down
        stop = kill.at + window
        values = [
            c.without_agent(kill.at, stop)
            for c in self.calls
            if c.joined is not None and c.joined < stop and (c.left or math.inf) > kill.at
        ]
        if not values:
            return 0.0
        values.sort()
        return round(values[min(len(values) - 1, math.ceil(0.95 * len(values)) - 1)], 1)

    async def state(self) -> dict[str, Any]:
        """The truth, from each LiveKit node and from the sessions table."""
        assert self.cluster is not None
        rooms: set[str] = set()
        for node in self.cluster.nodes:
            lk = api.LiveKitAPI(node.http_url, node.api_key, node.api_secret, failover=False)
            try:
                listed = await lk.room.list_rooms(api.ListRoomsRequest())
                rooms |= {r.name for r in listed.rooms}
            finally:
                await lk.aclose()
        conn = await asyncpg.connect(self.cluster.postgres.url.replace("+asyncpg", ""))
        try:
            rows = {
                r["id"]: dict(r)
                for r in await conn.fetch(
                    "SELECT id, room_name, status, end_reason, started_at FROM sessions"
                )
            }
            undelivered = await conn.fetchval(
                "SELECT count(*) FROM outbound_events WHERE delivered_at IS NULL"
            )
        finally:
            await conn.close()
        live = [r for r in rows.values() if r["status"] in LIVE]
        return {"rooms": rooms, "rows": rows, "live": live, "undelivered": undelivered}


def room_nodes(redis_port: int) -> dict[str, str]:
    """LiveKit's own placement of rooms on nodes, read from Redis (`room_node_map`)."""
    out = subprocess.run(
        ["redis-cli", "-p", str(redis_port), "--raw", "HGETALL", "room_node_map"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return dict(zip(out[::2], out[1::2], strict=False))


def node_id(node: LiveKitServer) -> str | None:
    """The node's LiveKit id, from its startup line in its log."""
    path = node.log_path
    return _node_id(path.read_text(errors="replace") if path and path.exists() else "")


def _node_id(log_text: str) -> str | None:
    marker = '"nodeID":"'
    at = log_text.find(marker, max(0, log_text.find('"starting LiveKit server"')))
    if at < 0:
        return None
    return log_text[at + len(marker) :].split('"', 1)[0]


LOSS_COUNTERS = (
    "sessions_lost",
    "rooms_without_record",
    "records_without_room_live",
    "duplicate_agents",
    "webhooks_duplicated",
    "webhooks_missing",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=2, help="concurrent callers")
    parser.add_argument("--hold", type=float, default=20, help="seconds a caller holds a call")
    parser.add_argument("--gap", type=float, default=25, help="seconds between faults")
    parser.add_argument("--down", type=float, default=4, help="seconds a killed part stays down")
    parser.add_argument("--settle", type=float, default=150, help="max wait for the reaper")
    parser.add_argument("--log-dir", default=None)
    args = parser.parse_args(argv)
    result = asyncio.run(Chaos(args).run())
    print(json.dumps(result), flush=True)
    return 1 if any(result[k] for k in LOSS_COUNTERS) else 0


if __name__ == "__main__":
    sys.exit(main())
