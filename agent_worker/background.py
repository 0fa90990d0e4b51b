"""The `background_audio` track: ambient sound, and thinking sounds while an answer is prepared.

The ambient clip plays for the whole session. livekit-agents would decode it from its file again
on every loop of every session, resample it and scale every frame by the volume in numpy; here it
is decoded once per process, the volume applied once, and every session of the process loops over
the same 100 ms frames (issue 13: a silent session's CPU). Thinking sounds stay files: they play
for a moment per answer.
"""

from __future__ import annotations

import asyncio
from typing import Self

import av
import numpy as np
from livekit import rtc
from livekit.agents import AudioConfig, BackgroundAudioPlayer, BuiltinAudioClip

from voice_common.agent_config import BackgroundAudioConfig

_BUILTIN = {clip.value: clip for clip in BuiltinAudioClip}
SAMPLE_RATE = 48000  # what BackgroundAudioPlayer mixes and publishes
FRAME_SAMPLES = SAMPLE_RATE // 10  # its mixer's block: 100 ms

# (path, volume) -> the clip's frames, decoded once per process.
_clips: dict[tuple[str, float], tuple[rtc.AudioFrame, ...]] = {}
_decoding: dict[tuple[str, float], asyncio.Lock] = {}


def _path(name: str) -> str:
    """A clip shipped with livekit-agents by its file name, or else a path on the worker's disk."""
    builtin = _BUILTIN.get(name)
    return builtin.path() if builtin is not None else name


def _source(name: str) -> BuiltinAudioClip | str:
    return _BUILTIN.get(name, name)


def decode_clip(path: str, volume: float) -> tuple[rtc.AudioFrame, ...]:
    """The clip at `path` as 100 ms mono frames at 48 kHz with `volume` applied, decoded on the
    first call in this process and shared by every later one. Blocking: the worker's prewarm
    calls it for the default clip, so a session never waits for it."""
    key = (path, volume)
    if key not in _clips:
        _clips[key] = _decode(path, volume)
    return _clips[key]


async def decoded_clip(path: str, volume: float) -> tuple[rtc.AudioFrame, ...]:
    """decode_clip off the event loop, for a clip no prewarm decoded."""
    key = (path, volume)
    if key in _clips:
        return _clips[key]
    async with _decoding.setdefault(key, asyncio.Lock()):
        return await asyncio.to_thread(decode_clip, path, volume)


def _decode(path: str, volume: float) -> tuple[rtc.AudioFrame, ...]:
    chunks: list[np.ndarray] = []
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    with av.open(path) as container:
        for decoded in container.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(decoded)]
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    pcm = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)
    if volume != 1.0:
        pcm = np.clip(pcm.astype(np.float32) * volume, -32768, 32767).astype(np.int16)
    usable = max(FRAME_SAMPLES, len(pcm) - len(pcm) % FRAME_SAMPLES)
    pcm = np.resize(pcm, usable)  # whole frames: the loop's seam stays on a boundary
    return tuple(
        rtc.AudioFrame(
            data=pcm[i : i + FRAME_SAMPLES].tobytes(),
            sample_rate=SAMPLE_RATE,
            num_channels=1,
            samples_per_channel=FRAME_SAMPLES,
        )
        for i in range(0, usable, FRAME_SAMPLES)
    )


def prewarm_ambience(config: BackgroundAudioConfig) -> None:
    """Decodes the clip of `config` (the agents' default) before any session needs it."""
    if config.enabled and config.ambient:
        decode_clip(_path(config.ambient), config.ambient_volume)


class SharedAmbience:
    """An endless iterator over a clip decoded once per process (see decoded_clip); the mixer
    only reads the frames, so sessions can share them."""

    def __init__(self, path: str, volume: float) -> None:
        self._path = path
        self._volume = volume
        self._frames: tuple[rtc.AudioFrame, ...] = ()
        self._next = 0

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> rtc.AudioFrame:
        if not self._frames:
            self._frames = await decoded_clip(self._path, self._volume)
        frame = self._frames[self._next % len(self._frames)]
        self._next += 1
        return frame


def build_background_player(
    config: BackgroundAudioConfig, *, shared: bool = True
) -> BackgroundAudioPlayer | None:
    if not config.enabled:
        return None
    ambient = None
    if config.ambient and shared:
        ambient = AudioConfig(SharedAmbience(_path(config.ambient), config.ambient_volume))
    elif config.ambient:
        ambient = AudioConfig(_source(config.ambient), volume=config.ambient_volume)
    thinking = [
        AudioConfig(
            _source(name), volume=config.thinking_volume, probability=1 / len(config.thinking)
        )
        for name in config.thinking
    ]
    return BackgroundAudioPlayer(ambient_sound=ambient, thinking_sound=thinking or None)
