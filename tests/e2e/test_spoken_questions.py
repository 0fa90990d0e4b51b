"""Questions spoken the way callers ask them, not the way the FAQ was written.

The spoken set (devstack.spoken_questions) is synthesized here: several espeak-ng voices and
speeds, clean, under office noise and as telephone audio, for every FAQ of the demo agent and
for questions it cannot answer. Offline, a sample of it goes through the worker's own
recognizer and responder; through a real room, a few questions check what a caller sees: live
captions of their words before the final line, and an answer.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest
from livekit.agents import resources

from devstack.asr_accuracy import OUTCOMES, RIGHT, WRONG, hear_all, share, tally
from devstack.spoken_questions import (
    QUESTIONS,
    SpeechMaker,
    catalogue_overlap,
    demo_agent,
    spoken_set,
)
from devstack.voice_client import TrackAudio, VoiceClient
from tests.e2e.conftest import Gateway
from voice_common.agent_config import AgentConfig

pytestmark = [pytest.mark.e2e, pytest.mark.one_store]

NOISE_CLIP = Path(resources.__file__).parent / "office-ambience.ogg"
# Regression floors for the CI sample (198 questions: each held-out phrasing once per condition
# and voice family). Measured 41% right, 0.5% wrong, every off-topic question declined
# (BENCHMARKS.md): the wrong-answer target (<= 3%) is met, the right-answer one (>= 90%) is
# not; `make bench` measures the whole set against both.
MIN_RIGHT = 0.30
MAX_WRONG = 0.05
MIN_OFF_TOPIC_DECLINED = 0.9


@pytest.fixture(scope="module")
def demo() -> AgentConfig:
    return demo_agent()


@pytest.fixture(scope="module")
def maker(tmp_path_factory: pytest.TempPathFactory) -> SpeechMaker:
    return SpeechMaker(tmp_path_factory.mktemp("spoken-set"), NOISE_CLIP)


def test_the_spoken_phrasings_are_not_the_catalogues_own(demo: AgentConfig) -> None:
    texts = [t for texts in QUESTIONS.values() for t in texts]
    assert catalogue_overlap(demo, texts) == []
    assert set(QUESTIONS) == {*range(len(demo.faq)), None}  # every FAQ, and off-topic ones
    assert all(len(QUESTIONS[i]) >= 4 for i in QUESTIONS)


async def test_spoken_questions_get_the_right_answer_above_the_floor(
    demo: AgentConfig, maker: SpeechMaker, tmp_path: Path
) -> None:
    questions = spoken_set(sample=True)
    assert {q.condition for q in questions} == {"clean", "noisy", "phone"}
    assert len({q.voice for q in questions}) >= 4 and len({q.speed for q in questions}) == 2

    heard = await hear_all(questions, demo, maker, tmp_path / "asr-cache")

    counts = tally(heard)
    report = {g: {o: round(share(c, o), 2) for o in OUTCOMES} for g, c in counts.items()}
    assert len(heard) == len(questions)
    assert share(counts["all"], RIGHT) >= MIN_RIGHT, report
    assert share(counts["all"], WRONG) <= MAX_WRONG, report
    # off-topic questions are the ones a biased recognizer is most tempted to "answer"
    # right = "did not understand"
    assert share(counts["off-topic"], RIGHT) >= MIN_OFF_TOPIC_DECLINED, report
    assert {q.family for q in questions} == {"espeak", "mbrola"}


async def test_live_captions_come_before_the_final_line_and_the_agent_answers(
    gateway: Gateway, client: VoiceClient, maker: SpeechMaker, tmp_path: Path
) -> None:
    session = await gateway.start(agentId="demo", userIdentity="caller-asks")
    await client.join(session["livekitUrl"], session["userToken"])
    agent = await client.wait_for_agent()
    voice = await _greeting_heard(client, agent)
    asked = [
        ("en-us", "what are your business hours"),
        ("en-us+f3", "can you give me your phone number"),
        ("en-gb", "what is the weather going to be like"),
    ]
    for turn, (espeak_voice, text) in enumerate(asked, start=1):
        wav = _wav_48k(tmp_path, espeak_voice, text)
        before = len(client.captions_of(agent))
        await client.speak_wav(wav)
        await client.wait_for(
            lambda n=turn: len(client.captions_of("caller-asks")) >= n, 30, "the final caption"
        )
        await client.wait_for(
            lambda n=before: len(client.captions_of(agent)) > n, 30, "the agent's answer"
        )
        await client.wait_for(
            lambda: voice.loud_after(time.monotonic() - 0.3) is None, 30, "the answer to end"
        )

    lines = [c for c in client.captions if c.participant == "caller-asks"]
    finals = [c for c in lines if c.final]
    assert len(finals) >= len(asked), [c.text for c in lines]
    for final in finals:
        interims = [c for c in lines if not c.final and c.segment_id == final.segment_id]
        assert interims, f"no live caption before {final.text!r}"
        assert min(c.first_chunk_at for c in interims) < final.first_chunk_at
        assert final.text
    assert len(client.captions_of(agent)) >= 1 + len(asked)  # the greeting, then the answers
    await gateway.end(session["roomName"])


async def _greeting_heard(client: VoiceClient, agent: str) -> TrackAudio:
    await client.wait_for(lambda: client.captions_of(agent), 20, "the greeting caption")
    await client.wait_for(
        lambda: (v := client.agent_voice()) is not None and v.first_loud_at is not None,
        20,
        "the greeting to be audible",
    )
    voice = client.agent_voice()
    assert voice is not None
    await client.wait_for(
        lambda: voice.loud_after(time.monotonic() - 0.3) is None, 30, "the greeting to end"
    )
    await asyncio.sleep(0.2)
    return voice


def _wav_48k(directory: Path, voice: str, text: str) -> Path:
    raw, wav = directory / f"{voice}-raw.wav", directory / f"{voice}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "48000", "-c", "1", str(wav)], check=True)
    return wav
