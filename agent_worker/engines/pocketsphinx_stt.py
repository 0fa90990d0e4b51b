"""Offline speech-to-text with CMU PocketSphinx and the US English model shipped in its wheel.

Accuracy is modest, but it needs no network, no key and no download, so a whole session can
run air-gapped. It is non-streaming: AgentSession segments the user's speech with the VAD
(stt.StreamAdapter) and hands each finished utterance to `recognize()`.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Never

import numpy as np
import pocketsphinx
from livekit import rtc
from livekit.agents import (
    NOT_GIVEN,
    APIConnectOptions,
    APIError,
    LanguageCode,
    NotGivenOr,
    stt,
    utils,
)

MODEL_SAMPLE_RATE = 16000
"""The shipped acoustic model is trained on 16 kHz audio; everything is resampled to it."""

_SHIPPED_MODEL_LANGUAGES = frozenset({"en", "en-us"})


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


class PocketSphinxSTT(stt.STT[Never]):
    """One decoder per instance: it takes ~0.5 s to load and decodes one utterance at a time."""

    def __init__(self, *, language: str = "en-us") -> None:
        super().__init__(
            capabilities=stt.STTCapabilities(streaming=False, interim_results=False)
        )
        self._language = check_language(language)
        self._decoder: Any = None
        # held while loading and while decoding: the C decoder is not reentrant
        self._lock = threading.Lock()
        self._prewarm_thread: threading.Thread | None = None

    @property
    def model(self) -> str:
        return "pocketsphinx-en-us"

    @property
    def provider(self) -> str:
        return "pocketsphinx"

    def prewarm(self) -> None:
        """Starts loading in the background and returns at once.

        AgentActivity calls this on the event loop when a session starts, so it must not block;
        a recognition that arrives before loading is done waits on the lock.
        """
        if self._decoder is not None or self._prewarm_thread is not None:
            return
        self._prewarm_thread = threading.Thread(
            target=self._load_in_background, name="pocketsphinx-prewarm", daemon=True
        )
        self._prewarm_thread.start()

    def _load_in_background(self) -> None:
        try:
            with self._lock:
                self._ensure_decoder_locked()
        except APIError:
            pass  # surfaced again, with context, by the first recognize()

    def _ensure_decoder_locked(self) -> Any:
        if self._decoder is None:
            try:
                self._decoder = pocketsphinx.Decoder(
                    samprate=MODEL_SAMPLE_RATE, loglevel="ERROR"
                )
            except (RuntimeError, ValueError) as e:
                raise APIError(f"could not load the pocketsphinx model: {e}", retryable=False) from None
        return self._decoder

    def transcribe_blocking(self, frame: rtc.AudioFrame) -> str:
        """Blocking; runs in a worker thread so the event loop keeps serving audio."""
        pcm = to_model_pcm(frame)
        with self._lock:
            decoder = self._ensure_decoder_locked()
            decoder.start_utt()
            try:
                # full_utt: the whole utterance is known, so normalize over all of it
                decoder.process_raw(pcm, full_utt=True)
            finally:
                decoder.end_utt()
            hyp = decoder.hyp()
        return str(hyp.hypstr).strip() if hyp is not None else ""

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
            text = await asyncio.to_thread(self.transcribe_blocking, frame)

        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=utils.shortuuid(),
            alternatives=[stt.SpeechData(language=self._language, text=text, end_time=duration)],
        )
