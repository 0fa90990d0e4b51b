"""Real espeak-ng and PocketSphinx, no mocks: the offline stack must actually speak and listen.

Recognition of espeak's synthetic voice is imperfect, so assertions require a few of the spoken
words rather than an exact transcript. With espeak-ng 1.51 and pocketsphinx 5.1.1 the en-us
voice at 175 wpm gives "what are your opening now is" and "hello world".

Transcripts are not bit-for-bit reproducible. rtc.AudioResampler dithers its int16 output, and
under CPU contention a fresh decoder's first utterance sometimes ends differently; both change
only the tail of long sentences.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import APIConnectionError, APIConnectOptions, APIError, APITimeoutError, stt

from agent_worker.engines.espeak_tts import EspeakTTS, WavStreamReader
from agent_worker.engines.pocketsphinx_stt import (
    DEFAULT_CACHE_DIR,
    MODEL_SAMPLE_RATE,
    PocketSphinxSTT,
)
from agent_worker.engines.sphinx_engine import SphinxEngine
from voice_common.faq_matcher import normalize_words

pytestmark = pytest.mark.unit

NO_RETRY = APIConnectOptions(max_retry=0)
QUESTION = "what are your opening hours"


@pytest.fixture(scope="module")
async def sphinx() -> AsyncIterator[PocketSphinxSTT]:
    """Module-scoped: the decoder takes about half a second to load."""
    engine = PocketSphinxSTT()
    yield engine
    await engine.aclose()


def _load_wav(path: Path) -> rtc.AudioFrame:
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2
        n = w.getnframes()
        return rtc.AudioFrame(w.readframes(n), w.getframerate(), w.getnchannels(), n)


def _rms(frame: rtc.AudioFrame) -> float:
    samples = np.frombuffer(frame.data, dtype=np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(samples**2)))


async def _synthesize(engine: EspeakTTS, text: str) -> list[rtc.AudioFrame]:
    async with engine.synthesize(text, conn_options=NO_RETRY) as stream:
        return [ev.frame async for ev in stream]


async def _transcript(engine: PocketSphinxSTT, audio: rtc.AudioFrame | list[rtc.AudioFrame]) -> str:
    event = await engine.recognize(audio, conn_options=NO_RETRY)
    assert event.type == stt.SpeechEventType.FINAL_TRANSCRIPT
    assert len(event.alternatives) == 1
    return event.alternatives[0].text


async def test_espeak_synthesizes_audible_speech_at_the_reported_rate() -> None:
    engine = EspeakTTS()
    frames = await _synthesize(engine, "hello world")

    assert frames
    assert all(f.sample_rate == engine.sample_rate == 22050 for f in frames)
    assert all(f.num_channels == engine.num_channels == 1 for f in frames)
    audio = rtc.combine_audio_frames(frames)
    assert 0.5 <= audio.duration <= 3.0
    assert _rms(audio) > 500  # speech, not silence or a click


async def test_espeak_emits_small_first_frames_for_low_latency() -> None:
    frames = await _synthesize(EspeakTTS(), "This sentence is long enough to need several frames.")
    assert len(frames) > 3
    assert frames[0].duration <= 0.05


async def test_espeak_resamples_when_asked_for_another_rate() -> None:
    native = rtc.combine_audio_frames(await _synthesize(EspeakTTS(), "hello world"))
    frames = await _synthesize(EspeakTTS(sample_rate=16000), "hello world")

    assert all(f.sample_rate == 16000 for f in frames)
    assert rtc.combine_audio_frames(frames).duration == pytest.approx(native.duration, abs=0.05)


async def test_espeak_reads_text_literally_not_as_options(tmp_path: Path) -> None:
    # would pick a bad voice and write a file if it reached a command line or a shell
    target = tmp_path / "out.wav"
    frames = await _synthesize(EspeakTTS(), f"-v xx -w {target} $(touch {target})")
    assert rtc.combine_audio_frames(frames).duration > 1.0
    assert not target.exists()


async def test_espeak_missing_binary_is_a_connection_error() -> None:
    with pytest.raises(APIConnectionError, match="not found on PATH") as info:
        await _synthesize(EspeakTTS(binary="/nonexistent/espeak-ng"), "hello")
    assert info.value.__cause__ is None


async def test_espeak_unknown_voice_is_a_non_retryable_api_error() -> None:
    with pytest.raises(APIError, match="exited with status 1.*voice does not exist") as info:
        await _synthesize(EspeakTTS(voice="xx-nonexistent"), "hello")
    assert not info.value.retryable


async def test_espeak_interrupted_synthesis_leaves_no_process() -> None:
    engine = EspeakTTS()
    stream = engine.synthesize("word " * 2000, conn_options=NO_RETRY)
    await stream.__anext__()
    await stream.aclose()
    await asyncio.sleep(0.1)
    assert "espeak-ng" not in _child_commands()


def _child_commands() -> list[str]:
    """Names of this process's children, read from /proc."""
    names = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # exited while we looked
        comm, _, rest = text.partition(" (")[2].rpartition(") ")
        if int(rest.split()[1]) == os.getpid():
            names.append(comm)
    return names


@pytest.mark.parametrize("chunk", [1, 7, 44, 4096])
def test_wav_reader_handles_any_chunking_and_pipe_placeholder_sizes(chunk: int) -> None:
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us", "--stdout", "hi"], capture_output=True, check=True
    ).stdout
    assert wav[40:44] == b"\x00\xf0\xff\x7f"  # the unseekable-pipe placeholder data size

    reader = WavStreamReader()
    pcm = b"".join(reader.feed(wav[i : i + chunk]) for i in range(0, len(wav), chunk))

    assert reader.format is not None
    assert (reader.format.sample_rate, reader.format.num_channels) == (22050, 1)
    assert pcm == wav[44:]


def test_wav_reader_rejects_non_wav() -> None:
    with pytest.raises(ValueError, match="RIFF"):
        WavStreamReader().feed(b"ID3\x03" + b"\x00" * 20)


async def test_pocketsphinx_recognizes_an_espeak_wav(
    sphinx: PocketSphinxSTT, tmp_path: Path
) -> None:
    # the default espeak voice ("en", British) is heard as "what's that now is"; en-us is the
    # voice the config defaults to and the one the US English model hears
    path = tmp_path / "question.wav"
    espeak = await asyncio.create_subprocess_exec(
        "espeak-ng", "-v", "en-us", "-w", str(path), QUESTION
    )
    assert await espeak.wait() == 0
    audio = _load_wav(path)
    assert audio.sample_rate == 22050

    words = set(normalize_words(await _transcript(sphinx, audio)))

    assert words & {"opening", "hours"}
    assert len(words & set(QUESTION.split())) >= 3


async def test_pocketsphinx_accepts_48khz_stereo_frames(sphinx: PocketSphinxSTT) -> None:
    """What a LiveKit room delivers, in 10 ms frames as the VAD hands them over."""
    mono = rtc.combine_audio_frames(await _synthesize(EspeakTTS(), "hello world"))
    resampler = rtc.AudioResampler(mono.sample_rate, 48000)
    up = rtc.combine_audio_frames(resampler.push(mono) + resampler.flush())
    stereo = np.repeat(np.frombuffer(up.data, dtype=np.int16), 2).tobytes()
    n = up.samples_per_channel
    frames = [
        rtc.AudioFrame(stereo[i * 4 : (i + min(480, n - i)) * 4], 48000, 2, min(480, n - i))
        for i in range(0, n, 480)
    ]

    assert "hello" in normalize_words(await _transcript(sphinx, frames))


async def test_round_trip_espeak_to_pocketsphinx(sphinx: PocketSphinxSTT) -> None:
    frames = await _synthesize(EspeakTTS(), "hello world")
    assert frames[0].sample_rate != MODEL_SAMPLE_RATE  # exercises the resampling path

    words = normalize_words(await _transcript(sphinx, frames))

    assert {"hello", "world"} & set(words)


async def test_pocketsphinx_finals_carry_each_words_posterior(sphinx: PocketSphinxSTT) -> None:
    """What the responder weighs words by: how sure the decoder was of each of them."""
    frames = await _synthesize(EspeakTTS(), QUESTION)
    event = await sphinx.recognize(frames, conn_options=NO_RETRY)
    data = event.alternatives[0]

    assert data.words is not None
    assert [str(w) for w in data.words] == data.text.split()
    posteriors = [float(w.confidence) for w in data.words]
    assert all(0.0 <= p <= 1.0 for p in posteriors)
    assert data.confidence == pytest.approx(sum(posteriors) / len(posteriors))
    assert max(posteriors) > 0.5  # "what" and "opening" come out clearly


async def test_pocketsphinx_silence_and_empty_input_give_empty_text(
    sphinx: PocketSphinxSTT,
) -> None:
    # undecoded: pocketsphinx hears "dog" in pure digital silence
    silence = rtc.AudioFrame(b"\x00\x00" * 16000, 16000, 1, 16000)
    assert await _transcript(sphinx, silence) == ""
    assert await _transcript(sphinx, []) == ""


async def test_pocketsphinx_prewarm_does_not_block_and_decoding_keeps_the_loop_free() -> None:
    engine = PocketSphinxSTT(language="en")
    started = time.perf_counter()
    engine.prewarm()
    assert time.perf_counter() - started < 0.05  # the model loads in the background

    text = "hello world, what are your opening hours and where are you located"
    audio = rtc.combine_audio_frames(await _synthesize(EspeakTTS(), text))
    gaps: list[float] = []

    async def tick() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            gaps.append(time.perf_counter() - before)

    ticker = asyncio.create_task(tick())
    try:
        results = await asyncio.gather(*(_transcript(engine, audio) for _ in range(3)))
    finally:
        ticker.cancel()
        await engine.aclose()

    # three requests at once share one child: each must get its own answer; the last words
    # may differ between runs (see the module docstring), so only the start is compared
    assert all(r.startswith("hello world what are your opening") for r in results)
    # decoding in-process (even in a thread) holds the GIL, so the loop would stall for
    # nearly the whole decode; a busy host only adds the odd scheduling hiccup
    stalled = sum(g for g in gaps if g > 0.1)
    assert stalled < 0.3 * sum(gaps)


async def test_pocketsphinx_recovers_when_its_process_dies(sphinx: PocketSphinxSTT) -> None:
    audio = rtc.combine_audio_frames(await _synthesize(EspeakTTS(), "hello world"))
    assert "hello" in await _transcript(sphinx, audio)
    pid = sphinx.engine.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.2)

    assert "hello" in await _transcript(sphinx, audio)
    assert sphinx.engine.pid not in (None, pid)


async def test_pocketsphinx_watchdog_turns_a_hung_decode_into_a_timeout(
    sphinx: PocketSphinxSTT,
) -> None:
    audio = rtc.combine_audio_frames(await _synthesize(EspeakTTS(), QUESTION))
    await _transcript(sphinx, audio)  # the model is loaded, so only the decode is timed
    pid = sphinx.engine.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # hangs like a decoder stuck in a loop

    with pytest.raises(APITimeoutError):
        await sphinx.recognize(audio, conn_options=APIConnectOptions(max_retry=0, timeout=0.5))
    assert "opening" in await _transcript(sphinx, audio)  # a fresh decoder took over
    assert sphinx.engine.pid != pid


async def test_pocketsphinx_cancelled_recognition_does_not_skew_the_next(
    sphinx: PocketSphinxSTT,
) -> None:
    hello = rtc.combine_audio_frames(await _synthesize(EspeakTTS(), "hello world"))
    question = rtc.combine_audio_frames(await _synthesize(EspeakTTS(), QUESTION))
    pending = asyncio.create_task(_transcript(sphinx, question))
    await asyncio.sleep(0.1)
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending

    assert "hello" in await _transcript(sphinx, hello)


def test_pocketsphinx_prewarm_works_before_any_event_loop_exists() -> None:
    """A worker's prewarm hook runs synchronously, before the job's loop is created."""
    engine = SphinxEngine(DEFAULT_CACHE_DIR)
    started = time.perf_counter()
    engine.start()
    assert time.perf_counter() - started < 0.05
    try:
        assert engine.pid is not None
        recognizer = PocketSphinxSTT(engine=engine)
        silence_then_tone = np.concatenate(
            [np.zeros(8000), 3000 * np.sin(np.arange(8000) * 0.2)]
        ).astype(np.int16)
        frame = rtc.AudioFrame(silence_then_tone.tobytes(), 16000, 1, 16000)
        assert isinstance(asyncio.run(_transcript(recognizer, frame)), str)
    finally:
        engine.close()


def test_pocketsphinx_rejects_languages_without_a_shipped_model() -> None:
    with pytest.raises(ValueError, match="only ships a US English model"):
        PocketSphinxSTT(language="de-DE")
