"""A caller's story: start a session, hear the agent, ask a question, hear the answer, hang up."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from livekit import api

from devstack.voice_client import VoiceClient
from tests.e2e.conftest import Gateway, room_names

pytestmark = pytest.mark.e2e

DEMO_GREETING = "Hello! I am the demo agent. Ask me about our opening hours or prices."
HOURS_ANSWER = "We are open from nine in the morning to five in the evening, Monday to Friday."
NOT_CAUGHT = "Sorry, I did not catch that. Could you say it another way?"


async def test_a_caller_talks_with_the_agent_and_hangs_up(
    gateway: Gateway,
    client: VoiceClient,
    lkapi: api.LiveKitAPI,
    question_wav: Path,
    measure: dict[str, float],
) -> None:
    t0 = time.monotonic()
    session = await gateway.start(agentId="demo", userIdentity="caller-1")
    start_latency = time.monotonic() - t0
    responded_at = time.monotonic()
    assert session["roomName"] in await room_names(lkapi)
    assert session["livekitUrl"].startswith("ws://127.0.0.1:")
    assert session["userIdentity"] == "caller-1"

    await client.join(session["livekitUrl"], session["userToken"])
    joined_at = client.connected_at
    agent = await client.wait_for_agent()
    agent_ready = client.joined_at[agent] - responded_at

    # The ambience is on its own track, as the design card promises clients.
    await client.wait_for(
        lambda: (t := client.track("background_audio")) is not None and t.sound_frames > 50,
        15,
        "audible background_audio",
    )
    # The greeting is heard on the agent's voice track and captioned.
    await client.wait_for(
        lambda: (v := client.agent_voice()) is not None and v.first_loud_at is not None,
        15,
        "the greeting to be audible",
    )
    voice = client.agent_voice()
    assert voice is not None and voice.participant == agent
    greeting_first_audio = (voice.first_loud_at or 0) - joined_at
    await client.wait_for(lambda: client.captions_of(agent), 15, "the greeting caption")
    assert client.captions_of(agent)[0].text == DEMO_GREETING

    # The caller asks a question through their microphone.
    await client.wait_for(
        lambda: (
            len(client.captions_of(agent)) >= 1 and voice.loud_after(time.monotonic() - 0.3) is None
        ),
        20,
        "the greeting to finish",
    )
    # Not understood, the caller says it again once, as people do (the offline recognizer
    # declines what it heard with doubt rather than answer a wrong question); the answer to one
    # of the two tries is the right one, and a wrong answer fails at once.
    for _ in range(2):
        lines, asked = len(client.captions_of(agent)), len(client.captions_of("caller-1"))
        speech_ended = await client.speak_wav(question_wav)
        await client.wait_for(
            lambda n=asked: len(client.captions_of("caller-1")) > n, 20, "the user's caption"
        )
        heard = client.captions_of("caller-1")[asked].text.lower()
        assert heard, "the agent transcribed nothing"
        await client.wait_for(
            lambda n=lines: len(client.captions_of(agent)) > n, 20, "the agent's answer"
        )
        answer = client.captions_of(agent)[lines].text
        if answer != NOT_CAUGHT:
            break
        await client.wait_for(
            lambda: voice.loud_after(time.monotonic() - 0.3) is None, 20, "the agent to finish"
        )
    assert answer == HOURS_ANSWER, f"heard {heard!r}, answered {answer!r}"
    first_answer_audio = voice.loud_after(speech_ended)
    assert first_answer_audio is not None
    voice_to_voice = first_answer_audio - speech_ended

    # Hanging up closes the room for everyone.
    status, ended = await gateway.end(session["roomName"])
    assert status == 200, ended
    assert ended["status"] == "ended" and ended["endReason"] == "client_ended"
    assert ended["sessionId"] == session["sessionId"]
    await client.wait_for(client.disconnected.is_set, 10, "the server to close the connection")
    assert session["roomName"] not in await room_names(lkapi)
    status, again = await gateway.end(session["roomName"])
    assert status == 200 and again == ended

    measure["start_latency_ms"] = start_latency * 1000
    measure["agent_ready_ms"] = agent_ready * 1000
    measure["greeting_first_audio_ms"] = greeting_first_audio * 1000
    measure["voice_to_voice_ms"] = voice_to_voice * 1000


async def test_a_greeting_override_is_what_the_agent_says(
    gateway: Gateway, client: VoiceClient
) -> None:
    greeting = "Welcome to the override test."
    session = await gateway.start(agentId="demo", agentConfig={"greeting": greeting})
    await client.join(session["livekitUrl"], session["userToken"])
    agent = await client.wait_for_agent()
    await client.wait_for(lambda: client.captions_of(agent), 15, "the greeting caption")
    assert client.captions_of(agent)[0].text == greeting
    await gateway.end(session["roomName"])


async def test_background_audio_off_publishes_no_background_track(
    gateway: Gateway, client: VoiceClient
) -> None:
    session = await gateway.start(
        agentId="demo", agentConfig={"backgroundAudio": {"enabled": False}}
    )
    await client.join(session["livekitUrl"], session["userToken"])
    agent = await client.wait_for_agent()
    await client.wait_for(lambda: client.captions_of(agent), 15, "the greeting caption")
    await client.wait_for(
        lambda: (v := client.agent_voice()) is not None and v.first_loud_at is not None,
        15,
        "the greeting to be audible",
    )
    publications = client.room.remote_participants[agent].track_publications.values()
    assert [p.name for p in publications if p.name == "background_audio"] == []
    assert client.track("background_audio") is None
    await gateway.end(session["roomName"])


async def test_a_misconfigured_engine_fails_the_session_instead_of_a_silent_room(
    gateway: Gateway, lkapi: api.LiveKitAPI
) -> None:
    # The worker has no OPENAI_API_KEY, so this engine cannot be built for the session.
    session = await gateway.start(agentId="demo", agentConfig={"llm": "openai:gpt-4o-mini"})
    failed = await gateway.wait_for_session(
        session["roomName"], lambda r: r["status"] == "failed", 45, "the session to fail"
    )
    assert failed["endReason"] == "agent_failed"
    assert "OPENAI_API_KEY" in (failed["error"] or "")
    assert session["roomName"] not in await room_names(lkapi)
