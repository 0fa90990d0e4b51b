"""A caller for the density measure: joined, subscribed, microphone open, cheap to keep.

It notes when the agent joined and when the greeting became audible, then stops reading the audio
(it stays subscribed, so LiveKit still forwards every packet and the agent still sends them):
forty decoded 10 ms streams read in Python would take the bench more CPU than the worker.
The microphone carries a quiet room at real time (white noise at -60 dBFS, about what a browser
microphone with noise suppression or a phone line's comfort noise sends), not digital zeros, so
the agent's VAD and quiet gate work as they would on a real call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any

import numpy as np
from livekit import rtc

from devstack.voice_client import SPEECH_RMS

VOICE_TRACK = "agent_voice"
MIC_RATE = 16000
MIC_FRAME_MS = 100
ROOM_NOISE_DBFS = -60.0


class Listener:
    def __init__(self, *, microphone: bool = True) -> None:
        self.room = rtc.Room()
        self.microphone = microphone
        self.connected_at = 0.0
        self.agent_seen_at: float | None = None
        self.agent = asyncio.Event()
        self.greeting = asyncio.Event()
        self.greeting_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.room.on("participant_connected", self._on_participant)
        self.room.on("track_subscribed", self._on_track)

    async def join(self, url: str, token: str) -> None:
        await self.room.connect(url, token, rtc.RoomOptions(auto_subscribe=True))
        self.connected_at = time.monotonic()
        for p in self.room.remote_participants.values():
            self._on_participant(p)
        if self.microphone:
            source = rtc.AudioSource(MIC_RATE, 1, queue_size_ms=2 * MIC_FRAME_MS)
            track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            await self.room.local_participant.publish_track(track, options)
            self._own(self._speak_quiet_room(source))

    def agent_joined_wall(self) -> float | None:
        """LiveKit's own stamp of the agent's join (epoch seconds, ms precision)."""
        for p in self.room.remote_participants.values():
            if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT and p.joined_at:
                return p.joined_at.timestamp()
        return None

    async def leave(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.room.disconnect()

    def _on_participant(self, p: rtc.RemoteParticipant) -> None:
        if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT and self.agent_seen_at is None:
            self.agent_seen_at = time.monotonic()
            self.agent.set()

    def _on_track(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO and publication.name == VOICE_TRACK:
            self._own(self._until_greeting(track))

    async def _until_greeting(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream(track, sample_rate=48000, num_channels=1)
        try:
            async for event in stream:
                samples = np.frombuffer(event.frame.data, dtype=np.int16).astype(np.float32)
                if samples.size and float(np.sqrt(np.mean(samples**2))) > SPEECH_RMS:
                    self.greeting_at = time.monotonic()
                    self.greeting.set()
                    return
        finally:
            await stream.aclose()

    async def _speak_quiet_room(self, source: rtc.AudioSource) -> None:
        samples = MIC_RATE * MIC_FRAME_MS // 1000
        rng = np.random.default_rng()
        rms = 32768.0 * 10 ** (ROOM_NOISE_DBFS / 20)
        frames = [
            rtc.AudioFrame(
                data=np.clip(rng.normal(0.0, rms, samples), -32768, 32767)
                .astype(np.int16)
                .tobytes(),
                sample_rate=MIC_RATE,
                num_channels=1,
                samples_per_channel=samples,
            )
            for _ in range(10)
        ]
        while True:  # capture_frame waits while the queue is full: real-time pacing
            for frame in frames:
                await source.capture_frame(frame)

    def _own(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
