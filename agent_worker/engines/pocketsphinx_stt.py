"""Offline speech-to-text with CMU PocketSphinx and the US English model shipped in its wheel.

Accuracy is modest, but it needs no network, no key and no download, so a whole session can
run air-gapped. It is non-streaming: AgentSession segments the user's speech with the VAD
(stt.StreamAdapter) and hands each finished utterance to `recognize()`.

The decoder runs in a small child process, not a thread: pocketsphinx holds the GIL for the
whole decode (~0.4 s per second of audio), which would freeze the event loop that carries the
session's audio. The child imports nothing but pocketsphinx, loads the model once, and exits
when its stdin closes, so it cannot outlive the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import subprocess
import sys
import threading
from typing import Never

import numpy as np
from livekit import rtc
from livekit.agents import (
    NOT_GIVEN,
    APIConnectionError,
    APIConnectOptions,
    APIError,
    APITimeoutError,
    LanguageCode,
    NotGivenOr,
    stt,
    utils,
)

MODEL_SAMPLE_RATE = 16000
"""The shipped acoustic model is trained on 16 kHz audio; everything is resampled to it."""

SILENCE_RMS = 30.0
"""Below about -60 dBFS there is nothing to hear, and pocketsphinx would invent a word."""

_SHIPPED_MODEL_LANGUAGES = frozenset({"en", "en-us"})
_LOAD_TIMEOUT = 30.0  # ~0.5 s normally; generous so a busy host never loops on restarts

# full_utt: the whole utterance is known up front, so cepstral mean normalization uses all of it
_CHILD_SOURCE = r"""
import json, struct, sys
import pocketsphinx

def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()

try:
    # Capped active HMMs and words per frame and a phone-loop lookahead: about half the decode
    # time of the defaults with the same words on our test sentences. (Narrower beams were as
    # fast but turned "hello world" into "oh weird old".)
    decoder = pocketsphinx.Decoder(
        samprate=16000, loglevel="ERROR", maxhmmpf=3000, maxwpf=5, pl_window=10
    )
except Exception as e:
    reply({"error": f"{type(e).__name__}: {e}"})
    sys.exit(1)
reply({"ready": True})
stdin = sys.stdin.buffer
while True:
    header = stdin.read(4)
    if len(header) < 4:
        break
    pcm = stdin.read(struct.unpack("<I", header)[0])
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    reply({"text": hyp.hypstr if hyp is not None else ""})
"""


def check_language(language: str) -> LanguageCode:
    """Fails fast on a language the shipped model cannot hear, instead of returning gibberish."""
    normalized = language.strip().lower().replace("_", "-")
    if normalized not in _SHIPPED_MODEL_LANGUAGES:
        raise ValueError(
            f"pocketsphinx only ships a US English model; language {language!r} is not supported "
            "(use 'en-us')"
        )
    return LanguageCode("en-US")


def to_model_pcm(frame: rtc.AudioFrame) -> bytes:
    """16 kHz mono int16 bytes, the only input the shipped acoustic model understands."""
    pcm = frame.data.tobytes()
    if frame.num_channels > 1:
        samples = np.frombuffer(pcm, dtype=np.int16).reshape(-1, frame.num_channels)
        pcm = samples.mean(axis=1).round().astype(np.int16).tobytes()
    if frame.sample_rate == MODEL_SAMPLE_RATE:
        return pcm
    resampler = rtc.AudioResampler(
        frame.sample_rate, MODEL_SAMPLE_RATE, quality=rtc.AudioResamplerQuality.HIGH
    )
    out = resampler.push(bytearray(pcm)) + resampler.flush()
    return b"".join(f.data.tobytes() for f in out)


def is_silent(pcm: bytes) -> bool:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    return samples.size == 0 or float(np.sqrt(np.mean(samples**2))) < SILENCE_RMS


class DecoderProcess:
    """One pocketsphinx decoder in a child process, driven with blocking pipe I/O.

    Not thread-safe: PocketSphinxSTT serializes every call with its lock. Blocking reads and
    writes release the GIL, so they run in worker threads without stalling the event loop.
    """

    def __init__(self) -> None:
        """Returns at once; the model loads (~0.5 s) while the caller does other work."""
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD_SOURCE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        except OSError as e:
            raise APIConnectionError(
                f"could not start the pocketsphinx process: {e.strerror}", retryable=False
            ) from None
        self._ready = False

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def decode(self, pcm: bytes, budget: float) -> str:
        """Kills the child if it has not answered within `budget` seconds (plus model loading)."""
        timer = threading.Timer(budget + (0.0 if self._ready else _LOAD_TIMEOUT), self.kill)
        timer.daemon = True
        timer.start()
        try:
            if not self._ready:
                reply = self._read_reply()
                if "error" in reply:
                    raise APIError(
                        f"could not load the pocketsphinx model: {reply['error']}",
                        retryable=False,
                    )
                self._ready = True
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(struct.pack("<I", len(pcm)) + pcm)
                self._proc.stdin.flush()
            except (BrokenPipeError, ConnectionResetError):
                raise APIConnectionError("the pocketsphinx process exited") from None
            return str(self._read_reply()["text"])
        except APIConnectionError:
            if not timer.is_alive():
                raise APITimeoutError("pocketsphinx did not answer in time") from None
            raise
        finally:
            timer.cancel()

    def _read_reply(self) -> dict[str, object]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise APIConnectionError("the pocketsphinx process exited")
        reply = json.loads(line)
        assert isinstance(reply, dict)
        return reply

    def kill(self) -> None:
        """Safe from any thread; a reader blocked on the child then sees EOF."""
        with contextlib.suppress(ProcessLookupError):
            self._proc.kill()

    def close(self) -> None:
        """Blocking, but only briefly: the child is killed, not asked."""
        self.kill()
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                pipe.close()
        self._proc.wait()


class PocketSphinxSTT(stt.STT[Never]):
    """One decoder per instance: it takes ~0.5 s to load and decodes one utterance at a time.

    An instance may be shared by sessions on different event loops (the thread job executor):
    everything it shares is guarded by a threading lock, not an asyncio one.
    """

    def __init__(self, *, language: str = "en-us") -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=False, interim_results=False))
        self._language = check_language(language)
        self._worker: DecoderProcess | None = None
        # held for a whole decode: one child decodes one utterance at a time
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return "pocketsphinx-en-us"

    @property
    def provider(self) -> str:
        return "pocketsphinx"

    def prewarm(self) -> None:
        """Starts the decoder process and returns at once; the model loads in the background.

        Called by a worker's prewarm hook before any loop exists, and again by AgentActivity
        on the event loop when a session starts, so it must never wait.
        """
        if not self._lock.acquire(blocking=False):
            return  # a decode is running, so the decoder is already up
        try:
            with contextlib.suppress(APIError):  # raised again, to a caller, by recognize()
                self._ensure_worker_locked()
        finally:
            self._lock.release()

    def _ensure_worker_locked(self) -> DecoderProcess:
        if self._worker is None or not self._worker.alive:
            if self._worker is not None:
                self._worker.close()
            self._worker = DecoderProcess()
        return self._worker

    def transcribe_blocking(self, frame: rtc.AudioFrame, budget: float) -> str:
        """Runs in a worker thread. A caller that gives up does not stop it: it still reads
        its own reply, so the next request can never receive a stale one."""
        pcm = to_model_pcm(frame)
        if is_silent(pcm):
            return ""
        with self._lock:
            worker = self._ensure_worker_locked()
            try:
                return worker.decode(pcm, budget).strip()
            except APIError:
                self._worker = None
                worker.close()
                raise

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        if utils.is_given(language):
            try:
                check_language(language)
            except ValueError as e:
                raise APIError(str(e), retryable=False) from None

        frames = buffer if isinstance(buffer, list) else [buffer]
        frames = [f for f in frames if f.samples_per_channel > 0]
        text = ""
        duration = 0.0
        if frames:
            frame = rtc.combine_audio_frames(frames)
            duration = frame.duration
            # decoding runs at ~0.4x real time; never cut off a long utterance
            budget = conn_options.timeout + 2 * duration
            text = await asyncio.to_thread(self.transcribe_blocking, frame, budget)

        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=utils.shortuuid(),
            alternatives=[stt.SpeechData(language=self._language, text=text, end_time=duration)],
        )

    async def aclose(self) -> None:
        worker = self._worker
        if worker is not None:
            worker.kill()  # ends an in-flight decode now instead of waiting for it
        await asyncio.to_thread(self._close_blocking)

    def _close_blocking(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.close()
                self._worker = None
