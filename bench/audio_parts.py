"""Issue 13, measure 1 beside the switched-off variants: the CPU of a silent session's Python-side
audio parts, each run alone in this process and timed in process CPU seconds (all its threads)
per second of audio. CPU time, not wall time, so other work on a shared machine changes it far
less than the worker-level differences; each part runs `rounds` times in alternation and the
median is reported.

- ambience, livekit-agents: the clip decoded from its file on every loop, volume applied to every
  frame in numpy (what BackgroundAudioPlayer does with a file path);
- ambience, shared: the frames decoded once per process (agent_worker/background.py), looped;
- VAD (silero): one VAD stream fed silence in 50 ms frames at 24 kHz, as livekit-agents' room
  input delivers it (a session runs two: the turn detector's and the STT adapter's);
- input AGC: livekit-agents' AudioProcessingModule on the same frames (room input default).

Not here: receiving and decoding Opus and encoding the two published tracks, which run in
LiveKit's native threads inside a room; the worker-level variants measure them.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents.utils.audio import audio_frames_from_file
from livekit.agents.voice import background_audio
from livekit.plugins import silero

from agent_worker.background import SharedAmbience, _path, decode_clip
from voice_common.agent_config import BackgroundAudioConfig

AUDIO_SECONDS = 20.0
INPUT_RATE = 24000
INPUT_FRAME = INPUT_RATE // 20  # 50 ms


@dataclass
class AudioParts:
    audio_seconds: float
    rounds: int
    # part -> % of one core per stream (median of rounds), and every round
    pct: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "audio_seconds": self.audio_seconds,
            "rounds": self.rounds,
            "pct_of_one_core": self.pct,
            "rounds_pct": self.samples,
        }


async def _ambience_file(seconds: float) -> None:
    config = BackgroundAudioConfig()
    path = _path(config.ambient or "")
    produced = 0.0
    while produced < seconds:
        async for frame in audio_frames_from_file(path, 48000, 1):
            n = frame.samples_per_channel
            gain = background_audio._frame_gain(  # noqa: SLF001 - the very code being measured
                0, n, None, 0.0, 0.0, frame.sample_rate, config.ambient_volume
            )
            background_audio._apply_gain(frame, gain)  # noqa: SLF001
            produced += n / frame.sample_rate
            if produced >= seconds:
                return


async def _ambience_shared(seconds: float) -> None:
    config = BackgroundAudioConfig()
    path = _path(config.ambient or "")
    decode_clip(path, config.ambient_volume)  # the worker's prewarm did this once
    ambience = SharedAmbience(path, config.ambient_volume)
    produced = 0.0
    while produced < seconds:
        frame = await anext(ambience)
        produced += frame.samples_per_channel / frame.sample_rate


def _silence() -> rtc.AudioFrame:
    return rtc.AudioFrame(
        data=np.zeros(INPUT_FRAME, np.int16).tobytes(),
        sample_rate=INPUT_RATE,
        num_channels=1,
        samples_per_channel=INPUT_FRAME,
    )


def _vad_part(vad: silero.VAD) -> Callable[[float], Awaitable[None]]:
    async def run(seconds: float) -> None:
        stream = vad.stream()
        frame = _silence()
        for _ in range(int(seconds * 20)):
            stream.push_frame(frame)
        stream.end_input()
        async for _event in stream:
            pass
        await stream.aclose()

    return run


async def _agc(seconds: float) -> None:
    apm = rtc.AudioProcessingModule(auto_gain_control=True)
    frame = _silence()
    for _ in range(int(seconds * 20)):
        # APM takes 10 ms frames; room input splits its 50 ms frames the same way
        data = np.frombuffer(frame.data, np.int16)
        for i in range(5):
            chunk = rtc.AudioFrame(
                data=data[i * 240 : (i + 1) * 240].tobytes(),
                sample_rate=INPUT_RATE,
                num_channels=1,
                samples_per_channel=240,
            )
            apm.process_stream(chunk)


async def measure_audio_parts(*, rounds: int, seconds: float = AUDIO_SECONDS) -> AudioParts:
    vad = await asyncio.to_thread(silero.VAD.load)
    parts: dict[str, Callable[[float], Awaitable[None]]] = {
        "ambience, livekit-agents (decode every loop, gain every frame)": _ambience_file,
        "ambience, shared (decoded once per process)": _ambience_shared,
        "VAD, one silero stream": _vad_part(vad),
        "input AGC (AudioProcessingModule)": _agc,
    }
    result = AudioParts(audio_seconds=seconds, rounds=rounds)
    for _ in range(rounds):
        for name, part in parts.items():
            t0 = time.process_time()
            await part(seconds)
            used = time.process_time() - t0
            result.samples.setdefault(name, []).append(round(100.0 * used / seconds, 2))
    result.pct = {name: statistics.median(v) for name, v in result.samples.items()}
    return result
