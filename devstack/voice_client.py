"""A real LiveKit client, as an app would be: joins with the token from /start, listens, speaks.

It records what a person in the room would notice: who joined, which tracks arrived, when each track
first carried sound, the captions, and whether the server closed the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import wave
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from livekit import rtc

T = TypeVar("T")
SPEECH_RMS = 150.0  # int16 RMS, about -47 dBFS: clearly a voice
SOUND_RMS = 20.0  # about -64 dBFS: quiet ambience, but far above digital silence
TRANSCRIPTION_TOPIC = "lk.transcription"
CHAT_TOPIC = "lk.chat"  # what the agent answers as a typed turn


@dataclass
class TrackAudio:
    participant: str
    name: str
    frames: int = 0
    sound_frames: int = 0
    loud_frames: int = 0
    first_loud_at: float | None = None
    loud_times: list[float] = field(default_factory=list)

    def loud_after(self, t: float) -> float | None:
        return next((x for x in self.loud_times if x >= t), None)


@dataclass
class Caption:
    participant: str
    text: str
    final: bool
    segment_id: str
    first_chunk_at: float
    done_at: float


class VoiceClient:
    def __init__(self) -> None:
        self.room = rtc.Room()
        self.joined_at: dict[str, float] = {}
        self.tracks: dict[str, TrackAudio] = {}
        self.captions: list[Caption] = []
        self.disconnected = asyncio.Event()
        self.disconnect_reason: object = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connected_at = 0.0
        self.speech_started_at: float | None = None  # when speak_wav's first sample went out
        self.room.on("participant_connected", self._on_participant)
        self.room.on("track_subscribed", self._on_track)
        self.room.on("disconnected", self._on_disconnected)
        self.room.register_text_stream_handler(TRANSCRIPTION_TOPIC, self._on_text_stream)

    async def join(self, url: str, token: str, *, subscribe: bool = True) -> None:
        """`subscribe=False` makes a light client (load and fault tests): it sees who comes and
        goes but decodes no audio."""
        await self.room.connect(url, token, rtc.RoomOptions(auto_subscribe=subscribe))
        self.connected_at = time.monotonic()
        for p in self.room.remote_participants.values():
            self.joined_at.setdefault(p.identity, self.connected_at)

    @property
    def agent_identities(self) -> list[str]:
        return [
            p.identity
            for p in self.room.remote_participants.values()
            if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        ]

    async def wait_for(self, predicate: Callable[[], object], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {within}s waiting for {what}")
            await asyncio.sleep(0.02)

    async def wait_for_async(
        self,
        fetch: Callable[[], Awaitable[T]],
        predicate: Callable[[T], object],
        within: float,
        what: str,
    ) -> T:
        deadline = time.monotonic() + within
        while True:
            value = await fetch()
            if predicate(value):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {within}s waiting for {what}: {value!r}")
            await asyncio.sleep(0.1)

    async def wait_for_agent(self, within: float = 30) -> str:
        await self.wait_for(lambda: self.agent_identities, within, "the agent to join")
        return self.agent_identities[0]

    def track(self, name: str) -> TrackAudio | None:
        return self.tracks.get(name)

    def agent_voice(self) -> TrackAudio | None:
        return next(
            (t for t in self.tracks.values() if t.name != "background_audio"),
            None,
        )

    def captions_of(self, participant: str, *, final_only: bool = True) -> list[Caption]:
        return [
            c for c in self.captions if c.participant == participant and (c.final or not final_only)
        ]

    async def speak_wav(self, path: Path, trailing_silence: float = 1.5) -> float:
        """Publishes the WAV as the microphone in real time; returns when its speech ended."""
        with wave.open(str(path), "rb") as w:
            rate, channels = w.getframerate(), w.getnchannels()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        if channels > 1:
            pcm = pcm.reshape(-1, channels)[:, 0].copy()
        source = rtc.AudioSource(rate, 1, queue_size_ms=100)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await self.room.local_participant.publish_track(track, options)
        step = rate // 100  # 10 ms frames
        silence = np.zeros(step, dtype=np.int16)
        for _ in range(50):  # let the subscription settle before the first word
            await source.capture_frame(_frame(silence, rate))
        self.speech_started_at = time.monotonic()
        for i in range(0, len(pcm), step):
            chunk = pcm[i : i + step]
            if len(chunk) < step:
                chunk = np.concatenate([chunk, np.zeros(step - len(chunk), dtype=np.int16)])
            await source.capture_frame(_frame(chunk, rate))
        await source.wait_for_playout()
        ended_at = time.monotonic()
        for _ in range(int(trailing_silence * 100)):
            await source.capture_frame(_frame(silence, rate))
        return ended_at

    async def send_text(self, text: str) -> float:
        """Types a message, as a page's text box does: livekit-agents' text input topic.
        Returns when it was sent."""
        await self.room.local_participant.send_text(text, topic=CHAT_TOPIC)
        return time.monotonic()

    async def leave(self) -> None:
        await self.room.disconnect()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _on_participant(self, p: rtc.RemoteParticipant) -> None:
        self.joined_at.setdefault(p.identity, time.monotonic())

    def _on_disconnected(self, reason: object) -> None:
        self.disconnect_reason = reason
        self.disconnected.set()

    def _on_track(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO:
            return
        stats = TrackAudio(participant=participant.identity, name=publication.name)
        self.tracks[publication.name] = stats
        self._own(self._listen(track, stats))

    async def _listen(self, track: rtc.Track, stats: TrackAudio) -> None:
        stream = rtc.AudioStream(track, sample_rate=48000, num_channels=1)
        try:
            await self._measure(stream, stats)
        finally:
            await stream.aclose()

    async def _measure(self, stream: rtc.AudioStream, stats: TrackAudio) -> None:
        async for event in stream:
            samples = np.frombuffer(event.frame.data, dtype=np.int16).astype(np.float32)
            stats.frames += 1
            rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
            if rms > SOUND_RMS:
                stats.sound_frames += 1
            if rms > SPEECH_RMS:
                now = time.monotonic()
                stats.loud_frames += 1
                stats.loud_times.append(now)
                if stats.first_loud_at is None:
                    stats.first_loud_at = now

    def _on_text_stream(self, reader: rtc.TextStreamReader, participant: str) -> None:
        self._own(self._read_caption(reader, participant))

    async def _read_caption(self, reader: rtc.TextStreamReader, participant: str) -> None:
        first = None
        parts: list[str] = []
        async for chunk in reader:
            first = first or time.monotonic()
            parts.append(chunk)
        attrs = reader.info.attributes or {}
        self.captions.append(
            Caption(
                participant=participant,
                text="".join(parts).strip(),
                final=attrs.get("lk.transcription_final") == "true",
                segment_id=attrs.get("lk.segment_id", ""),
                first_chunk_at=first or time.monotonic(),
                done_at=time.monotonic(),
            )
        )

    def _own(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _frame(samples: np.ndarray, rate: int) -> rtc.AudioFrame:
    return rtc.AudioFrame(
        data=samples.tobytes(), sample_rate=rate, num_channels=1, samples_per_channel=len(samples)
    )
