"""The `background_audio` track: ambient sound, and thinking sounds while an answer is prepared."""

from __future__ import annotations

from livekit.agents import AudioConfig, BackgroundAudioPlayer, BuiltinAudioClip

from voice_common.agent_config import BackgroundAudioConfig

_BUILTIN = {clip.value: clip for clip in BuiltinAudioClip}


def _source(name: str) -> BuiltinAudioClip | str:
    """A clip shipped with livekit-agents by its file name, or else a path on the worker's disk."""
    return _BUILTIN.get(name, name)


def build_background_player(config: BackgroundAudioConfig) -> BackgroundAudioPlayer | None:
    if not config.enabled:
        return None
    ambient = (
        AudioConfig(_source(config.ambient), volume=config.ambient_volume)
        if config.ambient
        else None
    )
    thinking = [
        AudioConfig(
            _source(name), volume=config.thinking_volume, probability=1 / len(config.thinking)
        )
        for name in config.thinking
    ]
    return BackgroundAudioPlayer(ambient_sound=ambient, thinking_sound=thinking or None)
