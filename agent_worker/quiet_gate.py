"""Holds the caller's audio back from the VAD and the recognizer while the line is quiet.

An idle-listening session spent most of its CPU running Silero on every 32 ms of a silent line
and streaming that silence to the recognizer (the bench's idle breakdown: VAD ~58 % of the
worker's busy Python time). Frames far below any speech level carry nothing either could use,
so they wait here instead. The first frame at speech level releases the last `preroll` of held
audio ahead of itself (the VAD's prefix padding and the recognizer's onset window both look
back ~0.5 s), and the gate stays open for `hangover` after the last loud frame so both hear the
silence that ends the caller's turn. On a noisy line the gate simply stays open: it only ever
saves work, it never changes what a loud frame becomes.
"""

from __future__ import annotations

import collections
import math

import numpy as np
from livekit import rtc
from livekit.agents.voice import io

FULL_SCALE = 32768.0


def level_dbfs(frame: rtc.AudioFrame) -> float:
    """The frame's RMS level in dB below a full-scale int16 signal (-inf for digital silence)."""
    samples = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32)
    if samples.size == 0:
        return -math.inf
    mean_square = float(np.dot(samples, samples)) / samples.size
    if mean_square <= 0.0:
        return -math.inf
    return 10.0 * math.log10(mean_square / (FULL_SCALE * FULL_SCALE))


class QuietGate:
    """The gate's decisions, frame by frame; it knows nothing of where frames come from."""

    def __init__(
        self, *, threshold_dbfs: float, preroll_seconds: float, hangover_seconds: float
    ) -> None:
        self.threshold_dbfs = threshold_dbfs
        self._preroll_seconds = preroll_seconds
        self._hangover_seconds = hangover_seconds
        self._held: collections.deque[rtc.AudioFrame] = collections.deque()
        self._held_seconds = 0.0
        self._open_for = 0.0  # seconds of audio the gate still passes since the last loud frame
        self.passed_seconds = 0.0
        self.held_back_seconds = 0.0

    @property
    def is_open(self) -> bool:
        return self._open_for > 0.0

    def push(self, frame: rtc.AudioFrame) -> list[rtc.AudioFrame]:
        """The frames to pass on now, oldest first (none while the line stays quiet)."""
        duration = frame.duration
        if level_dbfs(frame) >= self.threshold_dbfs:
            released = list(self._held)
            self._held.clear()
            self._held_seconds = 0.0
            released.append(frame)
            self._open_for = self._hangover_seconds
            self.passed_seconds += sum(f.duration for f in released)
            return released
        if self._open_for > 0.0:
            self._open_for -= duration
            self.passed_seconds += duration
            return [frame]
        self._hold(frame)
        return []

    def _hold(self, frame: rtc.AudioFrame) -> None:
        self._held.append(frame)
        self._held_seconds += frame.duration
        while self._held and self._held_seconds - self._held[0].duration >= self._preroll_seconds:
            dropped = self._held.popleft()
            self._held_seconds -= dropped.duration
            self.held_back_seconds += dropped.duration


class QuietGateInput(io.AudioInput):
    """The session's audio input with the gate in front: everything downstream of the room's
    input (VAD, recognizer, interruption) sees only what the gate passes.

    `gain` is the automatic gain control, applied to passed frames only. It must come after
    the gate: it lifts a -60 dBFS room by ~14 dB, to where no fixed threshold could tell it
    from a soft voice, and it need not adapt to a line nobody speaks on."""

    def __init__(
        self,
        source: io.AudioInput,
        gate: QuietGate,
        *,
        gain: rtc.AudioProcessingModule | None = None,
    ) -> None:
        super().__init__(label="QuietGate", source=source)
        self.gate = gate
        self._gain = gain
        self._ready: collections.deque[rtc.AudioFrame] = collections.deque()

    async def __anext__(self) -> rtc.AudioFrame:
        source = self.source
        assert source is not None
        while not self._ready:
            self._ready.extend(self.gate.push(await source.__anext__()))
        frame = self._ready.popleft()
        if self._gain is not None:
            self._gain.process_stream(frame)
        return frame
