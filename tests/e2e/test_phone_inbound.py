"""A caller's story on the phone: dial a number made through the API, hear the greeting, ask,
hear the answer, hang up; and a call the gateway ends hangs up the phone."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from devstack.sip_phone import loud_spans
from devstack.stack import Stack
from tests.e2e.conftest import Gateway
from tests.e2e.phones import add_number, phone, phone_session, sip_address, telephone_turns

pytestmark = [pytest.mark.e2e, pytest.mark.one_store]

HOURS_ANSWER = "We are open from nine in the morning to five in the evening, Monday to Friday."
NOT_CAUGHT = "Sorry, I did not catch that. Could you say it another way?"
QUESTION_AT = 9.0


async def test_a_caller_dials_a_number_and_talks_with_the_agent(
    gateway: Gateway, stack: Stack, tmp_path: Path, measure: dict[str, float]
) -> None:
    number = await add_number(gateway)
    # The caller asks, and after a pause asks again, as a person does who was not understood: the
    # offline recognizer declines what it heard with doubt at 8 kHz, and a loaded machine can cut
    # the first question short. One of the two must get the answer, and neither a wrong one.
    question = telephone_turns(
        tmp_path, ["what are your opening hours"] * 2, lead=QUESTION_AT, gap=12.0, tail=30.0
    )
    async with phone(play=question) as caller:
        dialed_at = time.monotonic()
        await caller.dial(f"sip:{number['number']}@{sip_address(stack)}")
        established = await caller.wait_for("CALL_ESTABLISHED", 45)
        answered_after = established["at"] - dialed_at

        session = await phone_session(gateway, caller.number)
        room = session["roomName"]
        assert session["channel"] == "phone"
        assert session["phone"]["direction"] == "inbound"
        assert session["phone"]["callerNumber"] == caller.number
        assert session["phone"]["calledNumber"] == number["number"]
        assert session["phone"]["sipCallId"]

        record = await gateway.wait_for_session(
            room, lambda r: r["status"] == "active", 20, "the call to be answered"
        )
        assert record["agentId"] == "demo"

        async def transcript() -> list[dict]:
            code, body = await gateway.get(f"/v1/sessions/{room}/transcript")
            assert code == 200, body
            return body["segments"]

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            segments = await transcript()
            if any(s["speaker"] == "agent" and s["text"] == HOURS_ANSWER for s in segments):
                break
            await asyncio.sleep(0.5)
        segments = await transcript()
        heard = [s["text"] for s in segments if s["speaker"] == "user"]
        said = [s["text"] for s in segments if s["speaker"] == "agent"]
        assert said and said[0].startswith("Hello! I am the demo agent"), segments
        assert heard, f"the question was not transcribed: {segments}"
        assert HOURS_ANSWER in said, f"heard {heard!r}, said {said!r}"
        assert set(said[1:]) <= {HOURS_ANSWER, NOT_CAUGHT}, f"a wrong answer: {said!r}"

        await caller.hangup()
        ended = await gateway.wait_for_session(
            room, lambda r: r["status"] == "ended", 30, "the hang-up to end the session"
        )
        assert ended["endReason"] == "room_finished"

        # What the phone itself received: the greeting, then (after the question) the answer.
        spans = loud_spans(caller.heard())
        assert spans, "the phone heard nothing"
        assert spans[0][0] < QUESTION_AT, f"no greeting before the question: {spans}"
        assert any(start > QUESTION_AT + 1.0 for start, _ in spans), f"no answer heard: {spans}"
        measure["phone_answered_ms"] = answered_after * 1000
        measure["phone_greeting_heard_after_answer_ms"] = spans[0][0] * 1000


async def test_ending_a_phone_session_hangs_up_the_phone(gateway: Gateway, stack: Stack) -> None:
    number = await add_number(gateway)
    async with phone() as caller:
        await caller.dial(f"sip:{number['number']}@{sip_address(stack)}")
        await caller.wait_for("CALL_ESTABLISHED", 45)
        session = await phone_session(gateway, caller.number)
        status, ended = await gateway.end(session["roomName"])
        assert status == 200 and ended["endReason"] == "client_ended", ended
        closed = await caller.wait_for("CALL_CLOSED", 15)
        assert closed["direction"] == "outgoing"
