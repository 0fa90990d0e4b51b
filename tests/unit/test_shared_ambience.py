"""Issue 13: the ambient clip is decoded once per process and looped by every session."""

from __future__ import annotations

import numpy as np
import pytest
from livekit.agents import BuiltinAudioClip

from agent_worker.background import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    SharedAmbience,
    build_background_player,
    decoded_clip,
)
from voice_common.agent_config import BackgroundAudioConfig

pytestmark = pytest.mark.unit

CLIP = BuiltinAudioClip.OFFICE_AMBIENCE.path()


async def test_the_clip_is_decoded_once_with_its_volume_and_shared() -> None:
    loud = await decoded_clip(CLIP, 1.0)
    quiet = await decoded_clip(CLIP, 0.5)
    assert await decoded_clip(CLIP, 0.5) is quiet  # the second session decodes nothing
    assert len(loud) == len(quiet) > 10
    for frame in (loud[0], quiet[-1]):
        assert frame.sample_rate == SAMPLE_RATE and frame.num_channels == 1
        assert frame.samples_per_channel == FRAME_SAMPLES
    pcm = np.concatenate([np.frombuffer(f.data, np.int16) for f in loud]).astype(np.float32)
    half = np.concatenate([np.frombuffer(f.data, np.int16) for f in quiet]).astype(np.float32)
    assert np.abs(pcm).max() > 100  # not silence
    assert np.allclose(half, pcm * 0.5, atol=1.0)


async def test_a_session_loops_the_shared_frames_without_end() -> None:
    frames = await decoded_clip(CLIP, 0.8)
    ambience = SharedAmbience(CLIP, 0.8)
    played = [await anext(ambience) for _ in range(len(frames) + 3)]
    assert played[0] is frames[0] and played[len(frames)] is frames[0]
    assert played[-1] is frames[2]


async def test_the_player_is_built_from_the_agent_config() -> None:
    assert build_background_player(BackgroundAudioConfig(enabled=False)) is None
    player = build_background_player(BackgroundAudioConfig())
    assert player is not None
    await player.aclose()
