"""Many machines on loopback: a caller starts a session on either gateway replica, joins through
either LiveKit node, and meets the agent; the room is one room to every node (LiveKit on Redis).

The cluster (devstack/cluster.py, `make cluster`) is its own stack: two of everything cannot share
the single-node `stack` fixture. `make chaos` kills its parts under load; this test only proves the
healthy shape, so it stays short enough for every CI run (`-m cluster` runs it alone).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from livekit import api

from devstack.chaos import node_id, room_nodes
from devstack.cluster import Cluster
from devstack.voice_client import VoiceClient
from tests.e2e.conftest import AGENT_JOIN_S

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(
        api_key=f"vgw_sk_{secrets.token_urlsafe(32)}",
        log_dir=tmp_path_factory.mktemp("cluster"),
        extra_worker_env={"AGENT_WORKER_NUM_IDLE_PROCESSES": "1"},
        extra_gateway_env={
            "VOICEGW_REAPER_INTERVAL_SECONDS": "1",
            "VOICEGW_ROOM_PROBE_INTERVAL_SECONDS": "2",
        },
    )
    try:
        c.start()
        yield c
    finally:
        c.stop()


async def _call(
    cluster: Cluster, gateway: int, method: str, path: str, body: object = None, expect: int = 200
) -> dict[str, Any]:
    """The public API of one gateway replica, as a client app calls it."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
        http.request(
            method,
            f"{cluster.replica_url(gateway)}{path}",
            json=body,
            headers={"x-api-key": cluster.api_key},
        ) as resp,
    ):
        payload = await resp.json()
        assert resp.status == expect, payload
        return payload  # type: ignore[no-any-return]


async def _start(cluster: Cluster, gateway: int) -> dict[str, Any]:
    return await _call(cluster, gateway, "POST", "/v1/sessions/start", {"agentId": "demo"}, 201)


async def _end(cluster: Cluster, gateway: int, room: str) -> dict[str, Any]:
    return await _call(cluster, gateway, "POST", "/v1/sessions/end", {"roomName": room})


async def _session(cluster: Cluster, gateway: int, room: str) -> dict[str, Any]:
    return await _call(cluster, gateway, "GET", f"/v1/sessions/{room}")


async def _rooms_on(cluster: Cluster, node: int) -> set[str]:
    n = cluster.nodes[node]
    async with api.LiveKitAPI(n.http_url, n.api_key, n.api_secret, failover=False) as lk:
        return {r.name for r in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms}


@pytest.mark.parametrize(("gateway", "node"), [(0, 1), (1, 0)])
async def test_a_session_on_either_gateway_meets_its_agent_through_either_node(
    cluster: Cluster, gateway: int, node: int
) -> None:
    session = await _start(cluster, gateway)
    room = session["roomName"]
    # The token's URL is the nodes' one address; a client may as well dial one node directly.
    assert session["livekitUrl"] == cluster.livekit_url
    assert room in await _rooms_on(cluster, 0)
    assert room in await _rooms_on(cluster, 1)

    client = VoiceClient()
    try:
        await client.join(cluster.nodes[node].url, session["userToken"], subscribe=False)
        await client.wait_for_agent(within=AGENT_JOIN_S)  # a participant of kind AGENT
    finally:
        ended = await _end(cluster, 1 - gateway, room)  # the other replica ends it
        await client.leave()
    assert ended["status"] == "ended" and ended["endReason"] == "client_ended"
    assert room not in await _rooms_on(cluster, node)


async def test_a_session_on_a_node_that_dies_is_ended_and_its_room_deleted(
    cluster: Cluster,
) -> None:
    """No webhook ever comes from a dead node and Redis keeps listing its room: the reaper's
    probe finds the room unanswered, ends the session (livekit_node_lost) and deletes the room
    once LiveKit has moved it to the live node. Runs last: it kills a node (restarted after)."""
    session = await _start(cluster, 0)
    room = session["roomName"]
    host = [node_id(n) for n in cluster.nodes].index(room_nodes(cluster.redis.port)[room])
    other = 1 - host
    cluster.kill_node(host)
    try:
        deadline = asyncio.get_running_loop().time() + 90
        while (record := await _session(cluster, 1, room))["status"] != "ended":
            assert asyncio.get_running_loop().time() < deadline, record
            await asyncio.sleep(1)
        assert record["endReason"] == "livekit_node_lost"
        assert room not in await _rooms_on(cluster, other)
    finally:
        cluster.start_node(host)
