"""Every way a room ends becomes an ended session with a reason; no room outlives its session."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
from pathlib import Path

import aiohttp
import pytest
from livekit import api

from devstack.stack import Stack
from devstack.voice_client import VoiceClient
from tests.e2e.conftest import WEBHOOK_SECRET, Gateway, WebhookReceiver, room_names, voicegw

pytestmark = pytest.mark.e2e


async def joined_session(gateway: Gateway, client: VoiceClient, **body: object) -> dict:
    session = await gateway.start(agentId="demo", **body)
    await client.join(session["livekitUrl"], session["userToken"])
    await client.wait_for_agent()
    return session


async def test_the_caller_hangs_up_without_end_and_the_session_ends_room_finished(
    gateway: Gateway, client: VoiceClient, lkapi: api.LiveKitAPI
) -> None:
    session = await joined_session(gateway, client)
    room = session["roomName"]
    record = await gateway.wait_for_session(
        room, lambda r: r["participants"]["agent"]["joinedAt"], 10, "the agent join to be recorded"
    )
    assert record["participants"]["user"]["joinedAt"]
    await client.leave()
    ended = await gateway.wait_for_session(room, lambda r: r["status"] == "ended", 30, "the end")
    assert ended["endReason"] == "room_finished"
    assert room not in await room_names(lkapi)


async def test_the_reaper_ends_a_session_past_its_maximum_duration(
    gateway: Gateway, client: VoiceClient, lkapi: api.LiveKitAPI
) -> None:
    session = await joined_session(gateway, client, agentConfig={"maxDurationSeconds": 5})
    room = session["roomName"]
    ended = await gateway.wait_for_session(room, lambda r: r["status"] == "ended", 20, "the reaper")
    assert ended["endReason"] == "max_duration"
    assert 5 <= ended["durationSeconds"] < 12
    await client.wait_for(client.disconnected.is_set, 10, "the server to close the connection")
    assert room not in await room_names(lkapi)


async def test_a_room_made_outside_the_gateway_is_an_orphan_that_ops_can_end(
    gateway: Gateway, stack: Stack, lkapi: api.LiveKitAPI
) -> None:
    await lkapi.room.create_room(api.CreateRoomRequest(name="made-by-hand", empty_timeout=300))
    status, rooms = await gateway.get("/v1/ops/rooms")
    assert status == 200, rooms
    [orphan] = [r for r in rooms["data"] if r["roomName"] == "made-by-hand"]
    assert orphan["orphan"] is True and orphan["session"] is None

    dry = voicegw(stack, "rooms", "reap", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "made-by-hand" in dry.stdout and "orphan" in dry.stdout
    assert "made-by-hand" in await room_names(lkapi), "a dry run ended a room"

    listed = voicegw(stack, "rooms", "list")
    assert listed.returncode == 0 and "made-by-hand" in listed.stdout
    ended = voicegw(stack, "rooms", "end", "made-by-hand")
    assert ended.returncode == 0, ended.stderr
    assert "made-by-hand" not in await room_names(lkapi)


async def test_a_webhook_with_a_bad_signature_is_401_and_changes_nothing(
    gateway: Gateway, http: aiohttp.ClientSession, stack: Stack
) -> None:
    session = await gateway.start(agentId="demo")
    room = session["roomName"]
    forged = api.AccessToken("devkey", "not-the-secret-" + "x" * 32).with_sha256("AAAA").to_jwt()
    body = json.dumps({"event": "room_finished", "room": {"name": room}})
    for headers in ({"Authorization": forged}, {}):
        async with http.post(
            stack.gateway_url + "/v1/livekit/webhook",
            data=body,
            headers={"content-type": "application/webhook+json", **headers},
        ) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "invalid_signature"
    assert (await gateway.session(room))["status"] == "active"
    await gateway.end(room)


async def test_the_worker_killed_mid_session_ends_it_and_leaves_no_room(
    gateway: Gateway, client: VoiceClient, stack: Stack, lkapi: api.LiveKitAPI
) -> None:
    session = await joined_session(gateway, client)
    room = session["roomName"]
    for worker in stack.workers:
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait(10)
    stack.workers.clear()
    try:
        ended = await gateway.wait_for_session(
            room, lambda r: r["status"] == "ended", 60, "the session to end"
        )
        assert ended["endReason"] in ("agent_left", "room_finished")
        assert room not in await room_names(lkapi)
    finally:
        stack.start_worker()


async def test_a_spoken_exchange_is_in_the_transcript_and_the_session_ended_webhook(
    gateway: Gateway,
    client: VoiceClient,
    question_wav: Path,
    webhook_receiver: WebhookReceiver,
) -> None:
    session = await joined_session(gateway, client)
    room, agent = session["roomName"], client.agent_identities[0]
    await client.wait_for(lambda: client.captions_of(agent), 15, "the greeting")
    await client.speak_wav(question_wav)
    await client.wait_for(lambda: len(client.captions_of(agent)) >= 2, 20, "the answer")

    async def transcript() -> list[dict]:
        status, body = await gateway.get(f"/v1/sessions/{room}/transcript")
        assert status == 200, body
        return body["segments"]  # type: ignore[no-any-return]

    await client.wait_for_async(lambda: transcript(), lambda t: len(t) >= 3, 10, "3 segments")
    segments = await transcript()
    assert [s["speaker"] for s in segments] == ["agent", "user", "agent"]
    assert segments[0]["text"] == client.captions_of(agent)[0].text
    assert segments[2]["text"] == client.captions_of(agent)[1].text
    assert segments[1]["text"]
    assert [s["spokenAt"] for s in segments] == sorted(s["spokenAt"] for s in segments)

    status, ended = await gateway.end(room)
    assert status == 200
    await client.wait_for(
        lambda: webhook_receiver.events("session.ended", session["sessionId"]), 20, "the webhook"
    )
    [(headers, body)] = [
        (h, b)
        for h, b in webhook_receiver.received
        if b'"session.ended"' in b and session["sessionId"].encode() in b
    ]
    expected = hmac.new(
        WEBHOOK_SECRET.encode(),
        headers["X-Voicegw-Timestamp"].encode() + b"." + body,
        hashlib.sha256,
    ).hexdigest()
    assert headers["X-Voicegw-Signature"] == f"v1={expected}"
    [event] = webhook_receiver.events("session.ended", session["sessionId"])
    assert event["data"]["endReason"] == "client_ended"
    assert [s["text"] for s in event["data"]["transcript"]] == [s["text"] for s in segments]
    assert webhook_receiver.events("session.started", session["sessionId"])
