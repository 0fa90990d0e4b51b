"""Handing a caller to a person: a transfer through the API reaches a second phone (the human);
an agent that hears "a person" with nowhere to transfer to escalates with a signed webhook."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from devstack.sip_phone import Baresip
from devstack.stack import Stack
from tests.e2e.conftest import WEBHOOK_SECRET, Gateway, WebhookReceiver, voicegw
from tests.e2e.phones import (
    add_number,
    phone,
    phone_session,
    sip_address,
    spoken_wav,
    telephone_turns,
)

pytestmark = [pytest.mark.e2e, pytest.mark.one_store]


async def test_a_transfer_hands_the_caller_to_a_second_phone(
    gateway: Gateway, stack: Stack
) -> None:
    number = await add_number(gateway, agentId="support")
    async with phone(auto_answer=True) as human, phone() as caller:
        await caller.dial(f"sip:{number['number']}@{sip_address(stack)}")
        await caller.wait_for("CALL_ESTABLISHED", 45)
        session = await phone_session(gateway, caller.number)
        room = session["roomName"]
        await gateway.wait_for_session(room, lambda r: r["status"] == "active", 20, "answer")

        target = f"sip:{human.number}@{human.address}"
        moved = await asyncio.to_thread(
            voicegw, stack, "--json", "sessions", "transfer", room, "--to", target
        )
        assert moved.returncode == 0, transfer_diagnosis(moved.stderr, stack, caller)
        body = json.loads(moved.stdout)
        assert body["status"] == "ended" and body["endReason"] == "transferred", body
        # The caller's phone followed LiveKit's REFER and now talks to the human's phone.
        incoming = await human.wait_for("CALL_ESTABLISHED", 15)
        assert caller.number in incoming["peeruri"], incoming
        await caller.hangup()
        ended = await gateway.session(room)
        assert ended["endReason"] == "transferred"


def transfer_diagnosis(error: str, stack: Stack, caller: Baresip) -> str:
    """What the SIP service and the caller's phone logged about the REFER. This is how the
    408 seen in CI was traced to livekit-sip losing the phone's quick 202 (the phone had moved):
    scripts/patches/livekit-sip-buffered-final-response.patch."""
    assert stack.sip is not None and stack.sip.log_path is not None
    sip = stack.sip.log_path.read_text(errors="replace").splitlines()
    refer = [line[:300] for line in sip if "refer" in line.lower() or "transfer" in line.lower()]
    lines = "\n".join(refer[-20:])
    return f"{error}\n--- sip.log, REFER lines\n{lines}\n--- caller\n{caller.log_text()[-3000:]}"


async def test_transfer_needs_an_answered_phone_session(gateway: Gateway) -> None:
    web = await gateway.start(agentId="demo")
    status, body, _ = await gateway.post(
        f"/v1/sessions/{web['roomName']}/transfer", {"to": "sip:human@127.0.0.1"}
    )
    assert status == 409 and body["error"]["code"] == "not_a_phone_call", body
    status, body, _ = await gateway.post(
        f"/v1/sessions/{web['roomName']}/transfer", {"to": "http://example.com"}
    )
    assert status == 400 and body["error"]["code"] == "invalid_request", body
    await gateway.end(web["roomName"])


# How long an escalation may take, from the caller's words to the call ending, when the machine
# is loaded (the offline pipeline shares 2 cores with other engineers' stacks).
ESCALATION_S = 180.0


def escalations(receiver: WebhookReceiver, session_id: str) -> list[tuple[dict, bytes]]:
    out = []
    for headers, body in receiver.received:
        event = json.loads(body)
        if event["type"] == "session.escalated" and event["data"]["sessionId"] == session_id:
            out.append((dict(headers), body))
    return out


async def test_a_caller_who_asks_for_a_person_is_escalated_with_a_signed_webhook(
    gateway: Gateway, stack: Stack, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    # The support agent has no escalation.transferTo (and no background audio to mix).
    number = await add_number(gateway, agentId="support")
    # A caller who is not understood says it another way, as people do: at 8 kHz on a loaded
    # machine the recognizer once heard "I want an operator" as "what are the reader". The
    # worker's VAD also ran 30 s behind the call and its TTS took 16 s for a 2 s line there: the
    # phone keeps talking (silence) long enough for that, and the wait is long.
    ask = telephone_turns(
        tmp_path,
        ["I want an operator", "Can I talk to a person please"],
        lead=10.0,
        gap=20.0,
        tail=ESCALATION_S,
    )
    async with phone(play=ask) as caller:
        await caller.dial(f"sip:{number['number']}@{sip_address(stack)}")
        await caller.wait_for("CALL_ESTABLISHED", 45)
        session = await phone_session(gateway, caller.number)
        room = session["roomName"]
        ended = await gateway.wait_for_session(
            room, lambda r: r["status"] == "ended", ESCALATION_S, "the escalation to end the call"
        )
        assert ended["endReason"] == "escalated", ended
        await caller.wait_for("CALL_CLOSED", 15)

    deadline = asyncio.get_running_loop().time() + 20
    while not escalations(webhook_receiver, session["sessionId"]):
        assert asyncio.get_running_loop().time() < deadline, "no session.escalated webhook"
        await asyncio.sleep(0.2)
    [(headers, body)] = escalations(webhook_receiver, session["sessionId"])
    mac = hmac.new(
        WEBHOOK_SECRET.encode(),
        headers["X-Voicegw-Timestamp"].encode() + b"." + body,
        hashlib.sha256,
    )
    assert hmac.compare_digest(headers["X-Voicegw-Signature"], "v1=" + mac.hexdigest())
    data = json.loads(body)["data"]
    assert data["channel"] == "phone" and data["phone"]["callerNumber"] == caller.number
    lines = [(s["speaker"], s["text"]) for s in data["transcript"]]
    asked = ("operator", "person")
    assert any(who == "user" and any(w in text.lower() for w in asked) for who, text in lines), (
        lines
    )
    assert ("agent", "Of course. I am passing you to a colleague now.") in lines, lines


async def test_a_web_session_that_asks_for_a_person_is_escalated_too(
    gateway: Gateway, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    from devstack.voice_client import VoiceClient

    wav = spoken_wav(tmp_path, "I want an operator")
    session = await gateway.start(agentId="support")
    client = VoiceClient()
    try:
        await client.join(session["livekitUrl"], session["userToken"])
        agent = await client.wait_for_agent(60)
        await client.wait_for(lambda: client.captions_of(agent), 60, "the greeting")
        await client.speak_wav(wav)
        ended = await gateway.wait_for_session(
            session["roomName"], lambda r: r["status"] == "ended", 90, "the escalation"
        )
    finally:
        await client.leave()
    assert ended["endReason"] == "escalated", ended
    deadline = asyncio.get_running_loop().time() + 20
    while not escalations(webhook_receiver, session["sessionId"]):
        assert asyncio.get_running_loop().time() < deadline, "no session.escalated webhook"
        await asyncio.sleep(0.2)
    [(_, body)] = escalations(webhook_receiver, session["sessionId"])
    data = json.loads(body)["data"]
    assert data["channel"] == "web" and data["phone"] is None
    assert any(s["speaker"] == "user" for s in data["transcript"]), data["transcript"]
