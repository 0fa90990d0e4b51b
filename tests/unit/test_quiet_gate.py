"""The quiet gate: a quiet line costs the VAD and the recognizer nothing, and no word is lost.

Real espeak-ng speech in several voices and speeds, spoken softly into a room at -60 dBFS."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator

import numpy as np
import pytest
from livekit import rtc
from livekit.agents.voice import io

from agent_worker.quiet_gate import QuietGate, QuietGateInput, level_dbfs

pytestmark = pytest.mark.unit

RATE = 48000
FRAME = RATE // 100  # 10 ms, as the room delivers
THRESHOLD = -50.0
rng = np.random.default_rng(7)


def noise(seconds: float, dbfs: float = -60.0) -> np.ndarray:
    rms = 32768.0 * 10 ** (dbfs / 20)
    return rng.normal(0.0, rms, round(seconds * RATE))


def spoken(text: str, *, voice: str, speed: int, dbfs: float) -> np.ndarray:
    """espeak-ng's speech at 48 kHz, scaled so its RMS over the voiced part is `dbfs`."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
        capture_output=True,
        check=True,
    ).stdout
    samples = np.frombuffer(wav[44:], dtype=np.int16).astype(np.float64)
    samples = np.interp(np.arange(0, len(samples), 22050 / RATE), np.arange(len(samples)), samples)
    voiced = samples[np.abs(samples) > 0.05 * np.abs(samples).max()]
    return samples * (32768.0 * 10 ** (dbfs / 20) / np.sqrt(np.mean(voiced**2)))


def frames_of(signal: np.ndarray) -> list[rtc.AudioFrame]:
    pcm = np.clip(signal, -32768, 32767).astype(np.int16)
    return [
        rtc.AudioFrame(
            data=pcm[i : i + FRAME].tobytes(),
            sample_rate=RATE,
            num_channels=1,
            samples_per_channel=FRAME,
        )
        for i in range(0, len(pcm) - FRAME + 1, FRAME)
    ]


def gate(preroll: float = 0.8, hangover: float = 2.0) -> QuietGate:
    return QuietGate(threshold_dbfs=THRESHOLD, preroll_seconds=preroll, hangover_seconds=hangover)


def test_levels_of_digital_silence_room_noise_and_speech() -> None:
    assert level_dbfs(frames_of(np.zeros(FRAME))[0]) == -np.inf
    assert -61.5 < level_dbfs(frames_of(noise(0.01))[0]) < -58.5
    assert -21 < level_dbfs(frames_of(np.full(FRAME, 3277.0))[0]) < -19


def test_a_quiet_line_passes_nothing_and_holds_only_the_preroll() -> None:
    g = gate(preroll=0.5)
    passed = [f for frame in frames_of(noise(10.0)) for f in g.push(frame)]
    assert passed == []
    assert not g.is_open
    assert g.held_back_seconds == pytest.approx(9.5, abs=0.02)


@pytest.mark.parametrize(
    ("voice", "speed", "dbfs"),
    [("en-us", 175, -30.0), ("en-gb", 130, -38.0), ("en-us+f3", 220, -34.0), ("en-sc", 160, -40.0)],
)
def test_soft_speech_reaches_the_listeners_whole_with_its_lead_in_and_trailing_pause(
    voice: str, speed: int, dbfs: float
) -> None:
    """Every frame from the preroll before the first word to the hangover after the last one
    passes, unchanged and in order; the quiet long before and after does not."""
    lead, tail = 3.0, 5.0
    words = spoken("what are your opening hours on sunday", voice=voice, speed=speed, dbfs=dbfs)
    in_room = words + rng.normal(0.0, 32.8, len(words))  # the room's -60 dBFS under the voice
    frames = frames_of(np.concatenate([noise(lead), in_room, noise(tail)]))
    g = gate()
    passed = [f for frame in frames for f in g.push(frame)]

    loud = [i for i, f in enumerate(frames) if level_dbfs(f) >= THRESHOLD]
    first, last = loud[0], loud[-1]
    assert first * 0.01 == pytest.approx(lead, abs=0.3)  # the gate opened on the speech itself
    start = first - 80  # 0.8 s of preroll
    end = last + 200  # 2.0 s of hangover
    expected = frames[start : end + 1]
    assert [f.data.tobytes() for f in passed] == [f.data.tobytes() for f in expected]
    spoken_frames = int(len(words) / FRAME)
    assert len(passed) >= spoken_frames  # every frame of the utterance is in
    assert len(passed) < len(frames) - 500  # and most of the quiet is not


def test_a_pause_shorter_than_the_hangover_keeps_the_gate_open() -> None:
    g = gate(hangover=2.0)
    loud = frames_of(np.full(FRAME * 10, 3000.0))
    quiet = frames_of(noise(1.5))
    out = [f for frame in loud + quiet + loud for f in g.push(frame)]
    assert len(out) == len(loud) + len(quiet) + len(loud)


class _Frames(io.AudioInput):
    def __init__(self, frames: list[rtc.AudioFrame]) -> None:
        super().__init__(label="test")
        self._frames = iter(frames)

    async def __anext__(self) -> rtc.AudioFrame:
        try:
            return next(self._frames)
        except StopIteration:
            raise StopAsyncIteration from None


async def _read(source: AsyncIterator[rtc.AudioFrame]) -> list[rtc.AudioFrame]:
    return [frame async for frame in source]


async def test_the_session_input_yields_the_gate_output_one_frame_at_a_time() -> None:
    frames = frames_of(np.concatenate([noise(2.0), np.full(RATE // 2, 3000.0), noise(4.0)]))
    reference = gate()
    expected = [f for frame in frames for f in reference.push(frame)]
    got = await _read(QuietGateInput(_Frames(frames), gate()))
    assert [f.data.tobytes() for f in got] == [f.data.tobytes() for f in expected]
    assert 0 < len(got) < len(frames)


async def test_the_gain_control_behind_the_gate_neither_opens_it_nor_touches_held_frames() -> None:
    """The room input's AGC lifts a -60 dBFS room to about -46 dBFS, above the gate's threshold;
    behind the gate it sees only what passes, so a quiet line stays closed."""
    before, after = frames_of(noise(6.0)), frames_of(noise(6.0))
    speech = frames_of(spoken("opening hours", voice="en-us", speed=175, dbfs=-40.0))
    loudest_in = max(level_dbfs(f) for f in speech)  # the gain changes frames in place
    got = await _read(
        QuietGateInput(
            _Frames(before + speech + after),
            gate(),
            gain=rtc.AudioProcessingModule(auto_gain_control=True),
        )
    )
    # the preroll, the utterance and the hangover; none of the 5+ s of quiet before the speech
    assert len(speech) <= len(got) <= 80 + len(speech) + 200
    # and what passed went through the gain control (it lifts soft speech)
    assert max(level_dbfs(f) for f in got) > loudest_in
