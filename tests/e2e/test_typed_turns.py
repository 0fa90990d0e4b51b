"""A caller who cannot speak types into the call: the agent answers in voice and captions, as it
would a spoken question, and the stored transcript tells the typed turn from the spoken ones."""

from __future__ import annotations

import time

import pytest

from devstack.voice_client import VoiceClient
from tests.e2e.conftest import Gateway
from tests.e2e.test_chat_sessions import PRICE_ANSWER
from tests.e2e.test_voice_session import DEMO_GREETING, HOURS_ANSWER

pytestmark = [pytest.mark.e2e, pytest.mark.one_store]

# A loaded 2-core machine: generous waits, no timing asserted.
WAIT_S = 60


async def test_a_typed_question_is_answered_in_voice_and_captions(
    gateway: Gateway, client: VoiceClient
) -> None:
    session = await gateway.start(agentId="demo", userIdentity="typist-1")
    await client.join(session["livekitUrl"], session["userToken"])
    agent = await client.wait_for_agent(WAIT_S)
    await client.wait_for(lambda: client.captions_of(agent), WAIT_S, "the greeting caption")
    assert client.captions_of(agent)[0].text == DEMO_GREETING
    await client.wait_for(
        lambda: (v := client.agent_voice()) is not None and v.first_loud_at is not None,
        WAIT_S,
        "the greeting to be audible",
    )
    voice = client.agent_voice()
    assert voice is not None

    # Typed while the greeting may still play: the answer follows it, it is not lost.
    questions = [("When do you open?", HOURS_ANSWER), ("What does the plan cost?", PRICE_ANSWER)]
    for n, (question, answer) in enumerate(questions, start=2):
        await client.wait_for(
            lambda: voice.loud_after(time.monotonic() - 0.5) is None, WAIT_S, "a quiet moment"
        )
        sent_at = await client.send_text(question)
        await client.wait_for(
            lambda n=n: len(client.captions_of(agent)) >= n, WAIT_S, f"the answer to {question!r}"
        )
        assert client.captions_of(agent)[n - 1].text == answer
        await client.wait_for(
            lambda sent_at=sent_at: voice.loud_after(sent_at) is not None,
            WAIT_S,
            "the answer to be heard",
        )
    # Nothing was spoken: the microphone never published a word to transcribe.
    assert client.captions_of("typist-1", final_only=False) == []

    def typed_turns_stored(transcript: dict[str, object]) -> bool:
        segments = transcript["segments"]
        assert isinstance(segments, list)
        return sum(s["speaker"] == "agent" for s in segments) >= 3 and any(
            s["text"] == questions[-1][0] for s in segments
        )

    async def fetch() -> dict[str, object]:
        status, payload = await gateway.get(f"/v1/sessions/{session['roomName']}/transcript")
        assert status == 200, payload
        return payload  # type: ignore[no-any-return]

    transcript = await client.wait_for_async(
        fetch, typed_turns_stored, WAIT_S, "the typed turns in the stored transcript"
    )
    lines = [(s["speaker"], s["text"], s["modality"]) for s in transcript["segments"]]  # type: ignore[attr-defined]
    assert lines == [
        ("agent", DEMO_GREETING, "voice"),
        ("user", questions[0][0], "text"),
        ("agent", HOURS_ANSWER, "voice"),
        ("user", questions[1][0], "text"),
        ("agent", PRICE_ANSWER, "voice"),
    ]
    status, ended = await gateway.end(session["roomName"])
    assert status == 200, ended
