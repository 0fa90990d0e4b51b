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
import sys
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
    """One pocketsphinx decoder in a child process; callers must serialize `decode()`."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc

    @classmethod
    async def start(cls) -> DecoderProcess:
        """Returns once the model is loaded (~0.5 s)."""
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _CHILD_SOURCE,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        except OSError as e:
            raise APIConnectionError(
                f"could not start the pocketsphinx process: {e.strerror}", retryable=False
            ) from None
        worker = cls(proc)
        try:
            reply = await worker._read_reply()
        except BaseException:
            await worker.aclose()
            raise
        if "error" in reply:
            await worker.aclose()
            raise APIError(
                f"could not load the pocketsphinx model: {reply['error']}", retryable=False
            )
        return worker

    @property
    def alive(self) -> bool:
        return self._proc.returncode is None

    async def decode(self, pcm: bytes) -> str:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(struct.pack("<I", len(pcm)) + pcm)
            await self._proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise APIConnectionError("the pocketsphinx process exited") from None
        return str((await self._read_reply())["text"])

    async def _read_reply(self) -> dict[str, object]:
        assert self._proc.stdout is not None
        line = await self._proc.stdout.readline()
        if not line:
            raise APIConnectionError("the pocketsphinx process exited")
        reply = json.loads(line)
        assert isinstance(reply, dict)
        return reply

    async def aclose(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        await self._proc.wait()


class PocketSphinxSTT(stt.STT[Never]):
    """One decoder per instance: it takes ~0.5 s to load and decodes one utterance at a time."""

    def __init__(self, *, language: str = "en-us") -> None:
        super().__init__(
            capabilities=stt.STTCapabilities(streaming=False, interim_results=False)
        )
        self._language = check_language(language)
        self._worker: DecoderProcess | None = None
        self._lock = asyncio.Lock()  # held while starting the decoder and while it decodes
        self._prewarm_task: asyncio.Task[None] | None = None

    @property
    def model(self) -> str:
        return "pocketsphinx-en-us"

    @property
    def provider(self) -> str:
        return "pocketsphinx"

    def prewarm(self) -> None:
        """Starts loading the model in the background and returns at once.

        AgentActivity calls this on the event loop when a session starts, so the model loads
        during the greeting. Without a running loop it does nothing; the first recognition
        loads the model instead.
        """
        if self._worker is not None or self._prewarm_task is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._prewarm_task = loop.create_task(self._prewarm(), name="pocketsphinx-prewarm")

    async def _prewarm(self) -> None:
        with contextlib.suppress(APIError):  # raised again, to a caller, by recognize()
            async with self._lock:
                await self._ensure_worker_locked()

    async def _ensure_worker_locked(self) -> DecoderProcess:
        if self._worker is None or not self._worker.alive:
            self._worker = await DecoderProcess.start()
        return self._worker

    async def _decode(self, pcm: bytes) -> str:
        async with self._lock:
            worker = await self._ensure_worker_locked()
            try:
                return await worker.decode(pcm)
            except BaseException:
                # a reply may still be in flight and would answer the next request: restart
                self._worker = None
                await asyncio.shield(worker.aclose())
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
            pcm = await asyncio.to_thread(to_model_pcm, frame)
            if not is_silent(pcm):
                # decoding runs at ~0.4x real time; never cut off a long utterance
                try:
                    async with asyncio.timeout(conn_options.timeout + 2 * duration):
                        text = (await self._decode(pcm)).strip()
                except TimeoutError:
                    raise APITimeoutError("pocketsphinx did not answer in time") from None

        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=utils.shortuuid(),
            alternatives=[stt.SpeechData(language=self._language, text=text, end_time=duration)],
        )

    async def aclose(self) -> None:
        if self._prewarm_task is not None:
            await utils.aio.cancel_and_wait(self._prewarm_task)
        async with self._lock:
            if self._worker is not None:
                await self._worker.aclose()
                self._worker = None
