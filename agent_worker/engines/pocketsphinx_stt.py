"""Offline streaming speech-to-text with CMU PocketSphinx and the US English model in its wheel.

It needs no network, no key and no download, so a whole session can run air-gapped. It streams:
audio goes to the decoder while the caller speaks, interim transcripts come back as they form
(the caller's live captions), and when the session's VAD ends the turn it flushes the stream
(`manual_flush`), leaving only the last fraction of a second to decode.

Given an agent's phrases (its FAQ questions, keywords and greeting), recognition is biased
toward them with a language model of the agent's own (agent_lm), built when the session
starts and cached; without phrases it uses the general English model.

The decoding runs in a child process (sphinx_child), shared by every stream of the worker
process through a SphinxEngine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Never

import numpy as np
from livekit import rtc
from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
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
from livekit.agents.metrics import STTMetrics
from livekit.agents.metrics.base import Metadata
from livekit.agents.types import TimedString

from agent_worker.engines.sphinx_engine import EngineStream, Event, Sink, SphinxEngine
from agent_worker.engines.sphinx_protocol import SAMPLE_RATE

MODEL_SAMPLE_RATE = SAMPLE_RATE
SILENCE_RMS = 30.0
"""Below about -60 dBFS there is nothing to hear, and pocketsphinx would invent a word."""

_SHIPPED_MODEL_LANGUAGES = frozenset({"en", "en-us"})
_LOAD_TIMEOUT = 30.0  # ~0.5 s normally; generous so a busy host never loops on restarts
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "voicegw" / "pocketsphinx"


def check_language(language: str) -> LanguageCode:
    """Fails fast on a language the shipped model cannot hear, instead of returning gibberish."""
    normalized = language.strip().lower().replace("_", "-")
    if normalized not in _SHIPPED_MODEL_LANGUAGES:
        raise ValueError(
            f"pocketsphinx only ships a US English model; language {language!r} is not supported "
            "(use 'en-us')"
        )
    return LanguageCode("en-US")


class PcmConverter:
    """Room audio (any rate, any channels) to the model's 16 kHz mono int16, frame by frame.

    One resampler for the whole stream: a fresh one per frame would click at every edge."""

    def __init__(self) -> None:
        self._resampler: rtc.AudioResampler | None = None
        self._rate = 0

    def push(self, frame: rtc.AudioFrame) -> bytes:
        pcm = frame.data.tobytes()
        if frame.num_channels > 1:
            samples = np.frombuffer(pcm, dtype=np.int16).reshape(-1, frame.num_channels)
            pcm = samples.mean(axis=1).round().astype(np.int16).tobytes()
        if frame.sample_rate == MODEL_SAMPLE_RATE:
            return pcm
        if self._resampler is None or self._rate != frame.sample_rate:
            self._rate = frame.sample_rate
            self._resampler = rtc.AudioResampler(
                frame.sample_rate, MODEL_SAMPLE_RATE, quality=rtc.AudioResamplerQuality.HIGH
            )
        return b"".join(f.data.tobytes() for f in self._resampler.push(bytearray(pcm)))

    def flush(self) -> bytes:
        if self._resampler is None:
            return b""
        out = b"".join(f.data.tobytes() for f in self._resampler.flush())
        self._resampler = None
        return out


def to_model_pcm(frame: rtc.AudioFrame) -> bytes:
    """16 kHz mono int16 bytes, the only input the shipped acoustic model understands."""
    converter = PcmConverter()
    return converter.push(frame) + converter.flush()


def speech_data(final: Event, language: LanguageCode) -> stt.SpeechData:
    """A decoder's final as livekit-agents carries it: the words with their posteriors, and
    the utterance's confidence (transcript_confidence on the user's chat message), which the
    responder weighs before it answers."""
    posteriors = [(str(word), float(p)) for word, p in final.get("words") or []]
    return stt.SpeechData(
        language=language,
        text=str(final.get("text", "")).strip(),
        words=[TimedString(word, confidence=p) for word, p in posteriors],
        confidence=utterance_confidence([p for _, p in posteriors]),
    )


def utterance_confidence(posteriors: Sequence[float]) -> float:
    """The mean posterior of the utterance's words (0 without words)."""
    return sum(posteriors) / len(posteriors) if posteriors else 0.0


def is_silent(pcm: bytes) -> bool:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    return samples.size == 0 or float(np.sqrt(np.mean(samples**2))) < SILENCE_RMS


class PocketSphinxSTT(stt.STT[Never]):
    """Cheap to create: the decoder lives in the engine, which sessions of a process share.

    Without an engine, the STT starts (and owns, and closes) one of its own."""

    def __init__(
        self,
        *,
        language: str = "en-us",
        engine: SphinxEngine | None = None,
        phrases: Sequence[str] = (),
        cache_dir: Path = DEFAULT_CACHE_DIR,
    ) -> None:
        super().__init__(
            capabilities=stt.STTCapabilities(
                streaming=True, interim_results=True, manual_flush=True
            )
        )
        self._language = check_language(language)
        self._owns_engine = engine is None
        self._engine = engine or SphinxEngine(cache_dir)
        # sent now, so the model is ready before the caller says anything
        self._model = self._engine.load_model(phrases) if phrases else None

    @property
    def model(self) -> str:
        return "pocketsphinx-en-us" + ("+agent" if self._model else "")

    @property
    def provider(self) -> str:
        return "pocketsphinx"

    @property
    def engine(self) -> SphinxEngine:
        return self._engine

    def prewarm(self) -> None:
        """Never waits: called before any loop exists and again on the loop at session start."""
        self._engine.start()

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> PocketSphinxStream:
        self._check_call_language(language)
        return PocketSphinxStream(self, conn_options=conn_options)

    def open_engine_stream(self, sink: Sink, *, gate: bool) -> EngineStream:
        return self._engine.open_stream(sink, model=self._model, gate=gate)

    def final_budget(self, audio_seconds: float, conn_options: APIConnectOptions) -> float:
        """How long a final may take after the flush before the child counts as hung."""
        budget = conn_options.timeout + 2 * audio_seconds
        return budget + (0.0 if self._engine.ready else _LOAD_TIMEOUT)

    def load_failure(self) -> APIError | None:
        error = self._engine.load_error
        if error is None:
            return None
        return APIError(f"could not load the pocketsphinx model: {error}", retryable=False)

    def _check_call_language(self, language: NotGivenOr[str]) -> None:
        if utils.is_given(language):
            try:
                check_language(language)
            except ValueError as e:
                raise APIError(str(e), retryable=False) from None

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        """A whole utterance at once (the non-streaming API), through the same decoder."""
        self._check_call_language(language)
        frames = buffer if isinstance(buffer, list) else [buffer]
        frames = [f for f in frames if f.samples_per_channel > 0]
        final: Event = {}
        duration = 0.0
        if frames:
            frame = rtc.combine_audio_frames(frames)
            duration = frame.duration
            pcm = to_model_pcm(frame)
            if not is_silent(pcm):
                final = await self._decode_whole(pcm, duration, conn_options)
        data = speech_data(final, self._language)
        data.end_time = duration
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            request_id=utils.shortuuid(),
            alternatives=[data],
        )

    async def _decode_whole(
        self, pcm: bytes, duration: float, conn_options: APIConnectOptions
    ) -> Event:
        events = _EventQueue()
        stream = self.open_engine_stream(events.sink, gate=False)
        try:
            stream.audio(pcm)
            stream.flush()
            budget = self.final_budget(duration, conn_options)
            while True:
                event = await events.get(budget, self)
                if event["type"] == "final":
                    return event
        finally:
            stream.close()

    async def aclose(self) -> None:
        if self._owns_engine:
            await asyncio.to_thread(self._engine.close)


_INPUT_ENDED: Event = {"type": "input ended"}


class _EventQueue:
    """Carries engine events from its reader thread onto this event loop."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Event] = asyncio.Queue()

    def sink(self, event: Event) -> None:
        """Thread-safe: the engine's reader thread calls it."""
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    def put(self, event: Event) -> None:
        """From this loop."""
        self._queue.put_nowait(event)

    async def get(self, within: float | None, owner: PocketSphinxSTT) -> Event:
        """The next event; a closed child or a missed deadline becomes an APIError."""
        try:
            event = await asyncio.wait_for(self._queue.get(), within)
        except TimeoutError:
            owner.engine.kill()  # hung: a fresh child takes over on the next stream
            raise APITimeoutError("pocketsphinx did not answer in time") from None
        if event["type"] == "closed":
            failure = owner.load_failure()
            if failure is not None:
                raise failure
            raise APIConnectionError("the pocketsphinx process exited")
        return event


class PocketSphinxStream(stt.RecognizeStream):
    def __init__(self, stt_: PocketSphinxSTT, *, conn_options: APIConnectOptions) -> None:
        super().__init__(stt=stt_, conn_options=conn_options)
        self._sphinx = stt_

    async def _run(self) -> None:
        events = _EventQueue()
        stream = self._sphinx.open_engine_stream(events.sink, gate=True)
        # flush times, oldest first: each flush gets exactly one final, in order
        flushes: list[float] = []
        converter = PcmConverter()
        speaking = False
        unanswered = [0.0]  # seconds of audio sent since the last final: the child's backlog

        async def forward() -> None:
            try:
                async for item in self._input_ch:
                    if isinstance(item, self._FlushSentinel):
                        stream.audio(converter.flush())
                        flushes.append(time.perf_counter())
                        stream.flush()
                    else:
                        pcm = converter.push(item)
                        unanswered[0] += len(pcm) / (2 * MODEL_SAMPLE_RATE)
                        stream.audio(pcm)
            finally:
                events.put(_INPUT_ENDED)

        sender = asyncio.create_task(forward(), name="pocketsphinx-forward")
        try:
            input_ended = False
            while not input_ended or flushes:  # every flush is answered before the end
                within = None
                if flushes:
                    within = self._sphinx.final_budget(unanswered[0], self._conn_options)
                event = await events.get(within, self._sphinx)
                kind = event["type"]
                if kind == _INPUT_ENDED["type"]:
                    input_ended = True
                    await sender  # raises what forward() raised
                elif kind == "speech":
                    speaking = True
                    self._send(stt.SpeechEventType.START_OF_SPEECH)
                elif kind == "interim":
                    self._send(stt.SpeechEventType.INTERIM_TRANSCRIPT, str(event["text"]))
                elif kind == "final":
                    unanswered[0] = 0.0
                    flushed_at = flushes.pop(0) if flushes else None
                    self._final(event, flushed_at)
                    if speaking:
                        speaking = False
                        self._send(stt.SpeechEventType.END_OF_SPEECH)
        finally:
            await utils.aio.cancel_and_wait(sender)
            stream.close()

    def _send(self, kind: stt.SpeechEventType, text: str | None = None) -> None:
        alternatives = (
            [stt.SpeechData(language=self._sphinx._language, text=text)] if text is not None else []
        )
        self._event_ch.send_nowait(stt.SpeechEvent(type=kind, alternatives=alternatives))

    def _final(self, event: Event, flushed_at: float | None) -> None:
        data = speech_data(event, self._sphinx._language)
        audio = float(event.get("audio", 0.0))
        if data.text:
            self._event_ch.send_nowait(
                stt.SpeechEvent(type=stt.SpeechEventType.FINAL_TRANSCRIPT, alternatives=[data])
            )
        if flushed_at is not None:
            # what is left of recognition once the turn ended: the stage a streaming decoder
            # shortens (the bench's "stt" stage)
            self._sphinx.emit(
                "metrics_collected",
                STTMetrics(
                    request_id=utils.shortuuid(),
                    timestamp=time.time(),
                    duration=time.perf_counter() - flushed_at,
                    label=self._sphinx.label,
                    audio_duration=audio,
                    streamed=True,
                    metadata=Metadata(
                        model_name=self._sphinx.model, model_provider=self._sphinx.provider
                    ),
                ),
            )
