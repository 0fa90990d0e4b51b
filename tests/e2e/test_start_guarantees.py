"""A start that guarantees an agent, as a client meets it: a refusal it can act on when no worker
could take the call, an agent that comes even when its first worker dies, an answer that waits for
the agent, retries that never make a second room, and a timeline that explains a slow start."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from livekit import api

from devstack.stack import Process, Stack
from devstack.voice_client import VoiceClient
from tests.e2e.conftest import Gateway, room_names

pytestmark = pytest.mark.e2e

SETUP_STEPS = {
    "created",
    "roomCreated",
    "dispatched",
    "jobAssigned",
    "agentJoined",
    "userJoined",
    "firstAgentAudio",
}


def live_workers(stack: Stack) -> list[Process]:
    return [w for w in stack.workers if w.proc.poll() is None]


def freeze(worker: Process) -> None:
    """A worker that hangs: registered in LiveKit and fresh in the gateway, answering nothing."""
    os.killpg(worker.proc.pid, signal.SIGSTOP)


def kill(stack: Stack, worker: Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(10)
    stack.workers.remove(worker)


async def restore_workers(stack: Stack) -> None:
    """The shared stack's other tests need one worker, as they found it."""
    for worker in list(stack.workers):
        if worker.proc.poll() is not None:
            stack.workers.remove(worker)
    if not stack.workers:
        await asyncio.to_thread(stack.start_worker)


async def readyz(http: aiohttp.ClientSession, stack: Stack) -> tuple[int, dict[str, Any]]:
    async with http.get(stack.gateway_url + "/readyz") as resp:
        return resp.status, await resp.json()


async def sessions_of(gateway: Gateway, identity: str) -> list[dict[str, Any]]:
    status, body = await gateway.get(f"/v1/sessions?userIdentity={identity}")
    assert status == 200, body
    return body["data"]  # type: ignore[no-any-return]


@pytest.mark.one_store
async def test_with_no_worker_start_is_503_with_no_room_and_readyz_says_why(
    gateway: Gateway, stack: Stack, lkapi: api.LiveKitAPI, http: aiohttp.ClientSession
) -> None:
    workers = live_workers(stack)
    assert workers, "the shared stack runs a worker"
    for worker in workers:
        worker.proc.send_signal(signal.SIGTERM)  # a graceful drain, as on a deploy
    try:
        deadline = time.monotonic() + 5  # the drain is reported before it starts
        while (await readyz(http, stack))[1]["checks"].get("agents") == "ok":
            assert time.monotonic() < deadline, "readyz still counts a draining worker"
            await asyncio.sleep(0.05)
        rooms_before = await room_names(lkapi)
        identity = f"caller-{secrets.token_hex(4)}"
        status, body, resp = await gateway.post(
            "/v1/sessions/start", {"agentId": "demo", "userIdentity": identity}
        )
        assert status == 503, body
        assert body["error"]["code"] == "no_agent_available"
        assert int(resp.headers["Retry-After"]) >= 1
        assert "draining" in body["error"]["message"]
        assert await room_names(lkapi) - rooms_before == set()
        [record] = await sessions_of(gateway, identity)
        assert (record["status"], record["endReason"]) == ("failed", "no_agent_available")

        status, ready = await readyz(http, stack)
        assert status == 200 and ready["status"] == "degraded", ready
        assert "no agent worker" in ready["checks"]["agents"]
        assert ready["agents"]["freeSlots"] == 0
    finally:
        for worker in workers:
            worker.stop(timeout=20)
            stack.workers.remove(worker)
        await restore_workers(stack)

    session = await gateway.start(agentId="demo")
    client = VoiceClient()
    try:
        await client.join(session["livekitUrl"], session["userToken"])
        await client.wait_for_agent(30)
    finally:
        await client.leave()
        await gateway.end(session["roomName"])
    assert (await readyz(http, stack))[1]["status"] == "ready"


@pytest.mark.one_store
async def test_a_worker_killed_right_after_the_dispatch_is_replaced_by_a_second_worker(
    gateway: Gateway, stack: Stack, client: VoiceClient, lkapi: api.LiveKitAPI
) -> None:
    [first] = live_workers(stack)
    freeze(first)  # it gets the job offer and never answers
    try:
        session = await gateway.start(agentId="demo")
        kill(stack, first)
        await asyncio.to_thread(stack.start_worker)  # a second worker comes up and reports
        room = session["roomName"]
        await client.join(session["livekitUrl"], session["userToken"])
        await client.wait_for_agent(60)
        record = await gateway.wait_for_session(
            room, lambda r: r["participants"]["agent"]["joinedAt"], 30, "the agent's join"
        )
        assert record["dispatchAttempts"] == 2
        steps = {s["step"] for s in record["timeline"] if s["at"]}
        assert {"redispatched", "jobAssigned", "agentJoined"} <= steps
        await asyncio.sleep(3)  # a second agent, if one were coming, would be here by now
        assert len(client.agent_identities) == 1
        participants = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
        agents = [p for p in participants.participants if p.kind == p.Kind.AGENT]
        assert len(agents) == 1
        await gateway.end(room)
    finally:
        if first in stack.workers:
            kill(stack, first)
        await restore_workers(stack)


@pytest.mark.one_store
async def test_wait_for_agent_with_no_agent_coming_is_504_and_leaves_nothing_behind(
    gateway: Gateway, stack: Stack, lkapi: api.LiveKitAPI
) -> None:
    [worker] = live_workers(stack)
    freeze(worker)
    try:
        rooms_before = await room_names(lkapi)
        identity = f"patient-{secrets.token_hex(4)}"
        status, body, _ = await gateway.post(
            "/v1/sessions/start",
            {
                "agentId": "demo",
                "userIdentity": identity,
                "waitForAgent": True,
                "waitForAgentTimeoutSeconds": 4,
            },
        )
        assert status == 504, body
        assert body["error"]["code"] == "agent_timeout"
        assert "within 4 s" in body["error"]["message"]
        assert await room_names(lkapi) - rooms_before == set()
        [record] = await sessions_of(gateway, identity)
        assert (record["status"], record["endReason"]) == ("failed", "agent_never_joined")
    finally:
        kill(stack, worker)
        await restore_workers(stack)


@pytest.mark.one_store
async def test_wait_for_agent_answers_with_the_agent_already_in_the_room(
    gateway: Gateway, client: VoiceClient, measure: dict[str, float]
) -> None:
    t0 = time.perf_counter()
    status, session, _ = await gateway.post(
        "/v1/sessions/start",
        {"agentId": "demo", "waitForAgent": True},
        timeout=aiohttp.ClientTimeout(total=40),  # the gateway bounds it (25 s here)
    )
    assert status == 201, session
    measure["waitForAgent /start answered, ms (one sample)"] = (time.perf_counter() - t0) * 1000
    await client.join(session["livekitUrl"], session["userToken"])
    assert client.agent_identities, "the agent was not in the room when /start answered"
    record = await gateway.session(session["roomName"])
    assert record["participants"]["agent"]["joinedAt"]
    await gateway.end(session["roomName"])


async def test_the_same_idempotency_key_gives_one_room_and_one_agent(
    gateway: Gateway, stack: Stack, client: VoiceClient, lkapi: api.LiveKitAPI
) -> None:
    key = str(uuid.uuid4())
    body = {"agentId": "demo", "userIdentity": f"retrier-{secrets.token_hex(4)}"}
    headers = {"Idempotency-Key": key}
    rooms_before = await room_names(lkapi)
    answers = []
    for _ in range(2):  # the client did not hear the first answer, so it sends again
        status, payload, resp = await gateway.post("/v1/sessions/start", body, headers=headers)
        assert status == 201, payload
        answers.append((payload, resp.headers.get("Idempotent-Replayed")))
    (first, replayed_first), (again, replayed_again) = answers
    assert (replayed_first, replayed_again) == (None, "true")
    for field in ("sessionId", "roomName", "userIdentity"):
        assert again[field] == first[field]
    verifier = api.TokenVerifier(stack.livekit.api_key, stack.livekit.api_secret)
    claims = [verifier.verify(a["userToken"]) for a in (first, again)]
    assert {(c.identity, c.video.room if c.video else None) for c in claims} == {
        (first["userIdentity"], first["roomName"])
    }
    assert await room_names(lkapi) - rooms_before == {first["roomName"]}

    status, payload, _ = await gateway.post(
        "/v1/sessions/start", {**body, "agentConfig": {"greeting": "Hi."}}, headers=headers
    )
    assert status == 409 and payload["error"]["code"] == "idempotency_conflict", payload
    status, payload, _ = await gateway.post(
        "/v1/sessions/start", body, headers={"Idempotency-Key": "x" * 300}
    )
    assert status == 400 and payload["error"]["code"] == "invalid_request", payload

    await client.join(again["livekitUrl"], again["userToken"])
    await client.wait_for_agent(30)
    await asyncio.sleep(3)  # a second agent, if one were coming, would be here by now
    assert len(client.agent_identities) == 1
    await gateway.end(first["roomName"])


@pytest.mark.one_store
async def test_the_setup_timeline_has_every_step_after_a_conversation(
    gateway: Gateway, client: VoiceClient, question_wav: Path
) -> None:
    session = await gateway.start(agentId="demo")
    room = session["roomName"]
    await client.join(session["livekitUrl"], session["userToken"])
    agent = await client.wait_for_agent(30)
    await client.wait_for(lambda: client.captions_of(agent), 30, "the greeting")
    await client.speak_wav(question_wav)
    await client.wait_for(lambda: len(client.captions_of(agent)) >= 2, 40, "the answer")

    record = await gateway.wait_for_session(
        room, lambda r: all(s["at"] for s in r["timeline"]), 30, "every setup step"
    )
    timeline = record["timeline"]
    assert {s["step"] for s in timeline} == SETUP_STEPS
    assert timeline[0]["step"] == "created" and timeline[0]["msSinceCreated"] == 0
    since_created = [s["msSinceCreated"] for s in timeline]
    assert since_created == sorted(since_created)
    assert all(s["msSincePrevious"] >= 0 for s in timeline[1:])
    order = [s["step"] for s in timeline]
    assert order.index("roomCreated") < order.index("dispatched") < order.index("agentJoined")
    assert order.index("userJoined") < order.index("firstAgentAudio")  # it greets the caller
    await gateway.end(room)
