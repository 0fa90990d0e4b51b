"""The streaming recognizer, as AgentSession drives it: frames while the caller speaks, a flush
when the session's VAD ends the turn. Real espeak-ng speech, a real decoder child process."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import APIConnectOptions, stt
from livekit.agents.metrics import STTMetrics

from agent_worker.engines.agent_lm import build_arpa, model_key, sentences
from agent_worker.engines.pocketsphinx_stt import PocketSphinxSTT
from agent_worker.engines.sphinx_engine import SphinxEngine
from voice_common.faq_matcher import normalize_words

pytestmark = pytest.mark.unit

RATE = 48000  # what the room delivers
QUESTION = "what are your opening hours"
PHRASES = ["What are your opening hours?", "When are you open?", "hours", "open", "price"]
Kind = stt.SpeechEventType


@pytest.fixture(scope="module")
async def engine(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SphinxEngine]:
    shared = SphinxEngine(tmp_path_factory.mktemp("asr-cache"))
    shared.start()
    yield shared
    await asyncio.to_thread(shared.close)


def speech(text: str, *, voice: str = "en-us", lead: float = 0.5, tail: float = 0.4) -> np.ndarray:
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True
    ).stdout
    pcm = subprocess.run(
        ["sox", "-t", "wav", "-", "-t", "raw", "-r", str(RATE), "-e", "signed", "-b", "16",
         "-c", "1", "-"],
        input=wav, capture_output=True, check=True,
    ).stdout  # fmt: skip
    pad = np.zeros(int(lead * RATE), dtype=np.int16), np.zeros(int(tail * RATE), dtype=np.int16)
    return np.concatenate([pad[0], np.frombuffer(pcm, dtype=np.int16), pad[1]])


def push(stream: stt.RecognizeStream, samples: np.ndarray) -> None:
    step = RATE // 50
    for i in range(0, len(samples), step):
        chunk = samples[i : i + step]
        stream.push_frame(rtc.AudioFrame(chunk.tobytes(), RATE, 1, len(chunk)))


async def until_final(stream: stt.RecognizeStream, within: float = 60) -> list[stt.SpeechEvent]:
    events: list[stt.SpeechEvent] = []
    async with asyncio.timeout(within):
        async for ev in stream:
            events.append(ev)
            if ev.type == Kind.FINAL_TRANSCRIPT:
                return events
    return events


def text_of(ev: stt.SpeechEvent) -> str:
    return ev.alternatives[0].text


async def only_hello_world_is_heard(stream: stt.RecognizeStream) -> None:
    """Says "hello world", ends the turn, and expects it to be the stream's only final."""
    push(stream, speech("hello world"))
    stream.flush()
    events = await until_final(stream)
    await stream.aclose()
    finals = [text_of(ev) for ev in events if ev.type == Kind.FINAL_TRANSCRIPT]
    assert len(finals) == 1 and {"hello", "world"} & set(normalize_words(finals[0]))


async def test_interim_transcripts_come_while_speaking_and_the_final_after_the_flush(
    engine: SphinxEngine,
) -> None:
    # the agent's model, as the worker decodes for any agent with an FAQ: with the general model
    # alone this synthetic question sits on a knife edge ("what are your opening dollars" or
    # "what are the owners", flipping with the resampler's dither), which is the accuracy
    # benchmark's to measure, not a unit test's
    recognizer = PocketSphinxSTT(engine=engine, phrases=PHRASES)
    metrics: list[STTMetrics] = []
    recognizer.on("metrics_collected", metrics.append)
    stream = recognizer.stream()
    push(stream, speech(QUESTION))
    stream.flush()

    events = await until_final(stream)
    await stream.aclose()

    kinds = [ev.type for ev in events]
    assert kinds[0] == Kind.START_OF_SPEECH
    assert Kind.INTERIM_TRANSCRIPT in kinds
    interims = [text_of(ev) for ev in events if ev.type == Kind.INTERIM_TRANSCRIPT]
    assert interims[0] and len(set(interims)) == len(interims)  # only changes are sent
    final = text_of(events[-1])
    assert {"opening", "hours"} <= set(normalize_words(final))
    # the flush was answered with what was left to decode: the final, and its timing
    assert len(metrics) == 1 and metrics[0].streamed and 0 < metrics[0].duration < 30
    assert metrics[0].audio_duration > 1.0


async def test_a_stream_hears_turn_after_turn_and_silence_gives_no_transcript(
    engine: SphinxEngine,
) -> None:
    stream = PocketSphinxSTT(engine=engine).stream()
    push(stream, np.zeros(RATE, dtype=np.int16))
    stream.flush()  # a turn the VAD ended on nothing: no final transcript
    await only_hello_world_is_heard(stream)


async def test_noise_that_never_ends_a_turn_is_dropped_unheard(engine: SphinxEngine) -> None:
    stream = PocketSphinxSTT(engine=engine).stream()
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(RATE // 2) * 3000).astype(np.int16)
    push(stream, np.concatenate([noise, np.zeros(4 * RATE, dtype=np.int16)]))
    await only_hello_world_is_heard(stream)


async def test_streams_sharing_an_engine_each_get_their_own_words(engine: SphinxEngine) -> None:
    """Sessions of a thread-executor worker share one decoder process."""
    a = PocketSphinxSTT(engine=engine).stream()
    b = PocketSphinxSTT(engine=engine).stream()
    hello, question = speech("hello world"), speech(QUESTION)
    step = RATE // 50
    for i in range(0, max(len(hello), len(question)), step):  # interleaved, as live audio is
        for stream, samples in ((a, hello), (b, question)):
            chunk = samples[i : i + step]
            if len(chunk):
                stream.push_frame(rtc.AudioFrame(chunk.tobytes(), RATE, 1, len(chunk)))
    a.flush()
    b.flush()

    got_a, got_b = await asyncio.gather(until_final(a), until_final(b))
    await a.aclose()
    await b.aclose()

    words_a, words_b = (
        set(normalize_words(text_of(got_a[-1]))),
        set(normalize_words(text_of(got_b[-1]))),
    )
    assert {"hello", "world"} & words_a and not {"opening", "hours"} & words_a
    assert {"opening", "hours"} & words_b and not {"hello", "world"} & words_b


async def test_an_agent_model_is_built_once_and_recognition_uses_it(
    engine: SphinxEngine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    recognizer = PocketSphinxSTT(engine=engine, phrases=PHRASES)
    assert recognizer.model == "pocketsphinx-en-us+agent"
    started = time.perf_counter()
    text = await recognizer.recognize(
        rtc.AudioFrame(speech(QUESTION).tobytes(), RATE, 1, len(speech(QUESTION))),
        conn_options=APIConnectOptions(max_retry=0),
    )
    assert {"opening", "hours"} <= set(normalize_words(text_of(text)))
    assert time.perf_counter() - started < 60
    cache = engine._cache_dir  # the model is on disk for the next process
    assert (cache / f"{model_key(PHRASES)}.arpa").exists()


def test_an_agent_model_holds_its_phrases_and_keeps_general_words_speakable() -> None:
    arpa = build_arpa(PHRASES, [("weather", 0.01), ("the", 0.05)])
    unigrams = arpa.split("\\1-grams:")[1].split("\\2-grams:")[0]
    words = {line.split()[1] for line in unigrams.splitlines() if line.strip()}
    assert {"opening", "hours", "open", "price", "weather", "the", "<s>", "</s>"} <= words
    assert "what are your" in arpa.split("\\3-grams:")[1]
    assert sentences(["Hi! Open at 9, ok?"]) == ["hi", "open at ok"]
    assert model_key(PHRASES) == model_key(list(PHRASES)) != model_key(PHRASES[:2])
