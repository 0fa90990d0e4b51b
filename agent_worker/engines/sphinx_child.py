"""The PocketSphinx decoder process: `python -m agent_worker.engines.sphinx_child CACHE_DIR`.

A child process, not a thread: pocketsphinx holds the GIL while it decodes, which would freeze
the event loop that carries the session's audio. It imports nothing but the standard library,
pocketsphinx and the two small modules beside it, loads the model once, and exits when its
stdin closes, so it cannot outlive the worker.

Streaming: audio arrives as the caller speaks. A cheap voice activity detector (WebRTC's, in
pocketsphinx) waits for speech; then a decoder takes the stream, is fed the half second before
the onset and everything after, and reports what it has heard so far every few hundred
milliseconds. When the worker says the turn ended (FLUSH, from the session's own VAD), only the
audio not yet searched remains, so the final text follows within tens of milliseconds.

Decoders are pooled: a stream holds one only while its caller speaks, so a few decoders serve
many mostly-listening streams. Each stream keeps its own cepstral mean (the caller's channel)
from one utterance to the next, whichever decoder serves it.
"""

from __future__ import annotations

import collections
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pocketsphinx

from agent_worker.engines import agent_lm, sphinx_cmn
from agent_worker.engines.sphinx_protocol import HEADER, SAMPLE_RATE, Op

# Capped active HMMs and words per frame and a phone-loop lookahead: about half the decode time
# of the defaults with the same words on our test sentences. (Narrower beams were as fast but
# turned "hello world" into "oh weird old".) No second "flat" pass: it searches the whole
# utterance again after its end, which is the wait streaming is here to remove.
DECODER_OPTIONS: dict[str, Any] = {
    "samprate": SAMPLE_RATE,
    "loglevel": "ERROR",
    "maxhmmpf": 3000,
    "maxwpf": 5,
    "pl_window": 10,
    "fwdflat": False,
}
BATCH_OPTIONS: dict[str, Any] = {**DECODER_OPTIONS, "cmn": "batch", "fwdflat": True}
"""Whole utterances handed over at once (recognize()): nobody waits on a live caption, so they
get what the acoustic model was trained with, each utterance's own cepstral mean (its
feat.params say `-cmn batch`), and the second "flat" pass. Without the flat pass a fresh
"hello world" comes out as "oh we're told"."""
MAX_DECODERS = 4
"""Streams speaking at the same moment beyond this wait for a decoder (and lose streaming)."""
MAX_MODELS = 16
"""Agent models kept loaded; the least recently used goes first."""

FRAME_SECONDS = 0.03
PREROLL_SECONDS = 0.6
"""Audio kept from before the detected onset: the detector needs a few frames to be sure."""
ONSET_FRAMES = (5, 8)
"""Speech in 5 of the last 8 frames (150 of 240 ms) starts an utterance."""
INTERIM_EVERY_SECONDS = 0.25
ABANDON_SECONDS = 3.0
"""An utterance with this much non-speech and no end of turn was noise: dropped unheard."""
MAX_UTTERANCE_SECONDS = 30.0
"""Longer monologues are cut into finals, bounding the decoder's memory."""
IDLE_KEEP_SECONDS = 4.0
"""Audio kept while no utterance runs, decoded if the turn ends before the detector fired."""


def reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Models:
    """The acoustic model's decoders and the language models they search."""

    def __init__(self, cache_dir: Path) -> None:
        self._cache_dir = cache_dir
        self._free: list[pocketsphinx.Decoder] = [self._new_decoder()]
        self._all = list(self._free)
        # where every stream's cepstral mean starts, so no caller inherits another's channel
        self.initial_cmn = sphinx_cmn.parse(self._free[0].get_cmn(False))
        self._models: collections.OrderedDict[str, pocketsphinx.NGramModel] = (
            collections.OrderedDict()
        )
        self._searches: dict[int, set[str]] = {id(self._all[0]): set()}
        self._background: list[tuple[str, float]] | None = None
        self._batch: pocketsphinx.Decoder | None = None

    def batch_decoder(self) -> pocketsphinx.Decoder:
        """The one decoder for whole utterances, made on first use (each costs ~40 MB)."""
        if self._batch is None:
            self._batch = pocketsphinx.Decoder(**BATCH_OPTIONS)
            self._all.append(self._batch)
            self._searches[id(self._batch)] = set()
        return self._batch

    @staticmethod
    def _new_decoder() -> pocketsphinx.Decoder:
        return pocketsphinx.Decoder(**DECODER_OPTIONS)

    def acquire(self, *, force: bool = False) -> pocketsphinx.Decoder | None:
        """A free decoder; a new one below the cap (or past it when `force`d), else None."""
        if self._free:
            return self._free.pop()
        if len(self._all) - (self._batch is not None) < MAX_DECODERS or force:
            decoder = self._new_decoder()
            self._all.append(decoder)
            self._searches[id(decoder)] = set()
            return decoder
        return None

    def release(self, decoder: pocketsphinx.Decoder) -> None:
        self._free.append(decoder)

    def activate(self, decoder: pocketsphinx.Decoder, key: str | None) -> None:
        """The agent's model when it is loaded, else the general one."""
        model = self._models.get(key) if key else None
        if key is None or model is None:
            decoder.activate_search()
            return
        self._models.move_to_end(key)
        searches = self._searches[id(decoder)]
        if key not in searches:
            decoder.add_lm(key, model)
            searches.add(key)
        decoder.activate_search(key)

    def load(self, key: str, phrases: list[str]) -> dict[str, Any]:
        if key in self._models:
            self._models.move_to_end(key)
            return {"cached": "memory"}
        decoder = self._all[0]
        path = self._cache_dir / f"{key}.arpa"
        cached = path.exists()
        if not cached:
            text = agent_lm.build_arpa(phrases, self.background())
            _write_atomic(path, text)
        model = pocketsphinx.NGramModel(decoder.config, decoder.logmath, str(path))
        self._models[key] = model
        while len(self._models) > MAX_MODELS:
            old, _ = self._models.popitem(last=False)
            for d in self._all:
                if old in self._searches[id(d)]:
                    d.remove_search(old)
                    self._searches[id(d)].discard(old)
        oov = sorted(
            {w for w in _arpa_words(path) if decoder.lookup_word(w) is None} - {"<s>", "</s>"}
        )
        return {"cached": "disk" if cached else "", "oov": oov}

    def background(self) -> list[tuple[str, float]]:
        """The general model's most frequent words with their probabilities, cached on disk:
        finding them means asking the model about every dictionary word (~2 s)."""
        if self._background is not None:
            return self._background
        path = self._cache_dir / f"background-{agent_lm.BACKGROUND_WORDS}.tsv"
        if not path.exists():
            _write_atomic(path, "".join(f"{w}\t{p!r}\n" for w, p in self._rank_words()))
        rows = [line.split("\t") for line in path.read_text().splitlines() if line]
        self._background = [(w, float(p)) for w, p in rows]
        return self._background

    def _rank_words(self) -> list[tuple[str, float]]:
        decoder = self._all[0]
        logmath = decoder.logmath
        general = pocketsphinx.NGramModel(
            decoder.config, logmath, pocketsphinx.get_model_path("en-us/en-us.lm.bin")
        )
        words: set[str] = set()
        with open(pocketsphinx.get_model_path("en-us/cmudict-en-us.dict")) as dictionary:
            for line in dictionary:
                words.add(_VARIANT.sub("", line.split(" ", 1)[0]))
        floor = logmath.log(1e-30)
        scored = [(w, p) for w in words if _PLAIN.fullmatch(w) and (p := general.prob([w])) > floor]
        scored.sort(key=lambda wp: -wp[1])
        return [(w, logmath.exp(p)) for w, p in scored[: agent_lm.BACKGROUND_WORDS]]


_VARIANT = re.compile(r"\(\d+\)$")
_PLAIN = re.compile(r"[a-z]+(?:'[a-z]+)*")


def _arpa_words(path: Path) -> list[str]:
    words: list[str] = []
    in_unigrams = False
    with open(path) as f:
        for line in f:
            if line.startswith("\\1-grams:"):
                in_unigrams = True
            elif line.startswith("\\"):
                if in_unigrams:
                    break
            elif in_unigrams and line.strip():
                words.append(line.split()[1])
    return words


def _write_atomic(path: Path, text: str) -> None:
    """Another worker process may be writing the same file: each writes its own and renames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


@dataclass
class Stream:
    id: int
    lm: str | None
    gate: bool
    vad: pocketsphinx.Vad
    pending: bytearray = field(default_factory=bytearray)
    recent: collections.deque[tuple[bytes, bool]] = field(default_factory=collections.deque)
    decoder: pocketsphinx.Decoder | None = None
    cmn_tracker: sphinx_cmn.CmnTracker | None = None
    waiting: list[bytes] = field(default_factory=list)
    cmn: list[float] | None = None
    """The caller's channel: the mean of the stream's last utterance, the next one's prior."""
    utterance_seconds: float = 0.0
    silence_seconds: float = 0.0
    since_interim: float = 0.0
    interim: str = ""
    started: bool = False


class Server:
    def __init__(self, models: Models) -> None:
        self._models = models
        self._streams: dict[int, Stream] = {}
        self._queue: collections.deque[int] = collections.deque()  # streams waiting for a decoder

    def handle(self, op: int, stream_id: int, payload: bytes) -> None:
        if op == Op.LOAD_LM:
            request = json.loads(payload)
            try:
                info = self._models.load(request["key"], request["phrases"])
                reply({"stream": 0, "type": "lm", "key": request["key"], **info})
            except Exception as e:  # a bad model must not take the recognizer down
                reply({"stream": 0, "type": "lm", "key": request["key"], "error": _describe(e)})
        elif op == Op.OPEN:
            request = json.loads(payload) if payload else {}
            self._streams[stream_id] = Stream(
                id=stream_id,
                lm=request.get("lm"),
                gate=bool(request.get("gate", True)),
                vad=pocketsphinx.Vad(pocketsphinx.Vad.LOOSE, SAMPLE_RATE, FRAME_SECONDS),
            )
        elif op == Op.AUDIO:
            stream = self._streams.get(stream_id)
            if stream is not None:
                self._audio(stream, payload)
        elif op == Op.FLUSH:
            stream = self._streams.get(stream_id)
            if stream is not None:
                self._flush(stream)
            else:
                reply({"stream": stream_id, "type": "final", "text": "", "audio": 0.0})
        elif op == Op.CLOSE:
            stream = self._streams.pop(stream_id, None)
            if stream is not None:
                self._end(stream)
                if stream_id in self._queue:
                    self._queue.remove(stream_id)

    def _audio(self, stream: Stream, pcm: bytes) -> None:
        stream.pending += pcm
        size = stream.vad.frame_bytes
        n = len(stream.pending) // size * size
        if n == 0:
            return
        chunk = bytes(stream.pending[:n])
        del stream.pending[:n]
        frames = [chunk[i : i + size] for i in range(0, n, size)]
        if not stream.started:
            frames = self._detect_onset(stream, frames)
            if not frames:
                return
        speech = [stream.vad.is_speech(f) for f in frames]
        self._feed(stream, b"".join(frames), speech)

    def _detect_onset(self, stream: Stream, frames: list[bytes]) -> list[bytes]:
        """Keeps recent audio until speech starts; returns the audio left after the onset."""
        keep = int(IDLE_KEEP_SECONDS / FRAME_SECONDS)
        window, needed = ONSET_FRAMES[1], ONSET_FRAMES[0]
        for i, frame in enumerate(frames):
            is_speech = (not stream.gate) or stream.vad.is_speech(frame)
            stream.recent.append((frame, is_speech))
            while len(stream.recent) > keep:
                stream.recent.popleft()
            last = list(stream.recent)[-window:]
            if sum(s for _, s in last) >= (1 if not stream.gate else needed):
                preroll = list(stream.recent)[-int(PREROLL_SECONDS / FRAME_SECONDS) :]
                stream.recent.clear()
                self._begin(stream, [f for f, _ in preroll], [s for _, s in preroll])
                return frames[i + 1 :]
        return []

    def _begin(self, stream: Stream, frames: list[bytes], speech: list[bool]) -> None:
        stream.started = True
        stream.utterance_seconds = stream.silence_seconds = stream.since_interim = 0.0
        stream.interim = ""
        reply({"stream": stream.id, "type": "speech"})
        if not stream.gate:  # a whole utterance: decoded at the flush with its own mean
            stream.waiting = list(frames)
            return
        decoder = self._models.acquire()
        if decoder is None:
            stream.waiting = list(frames)
            self._queue.append(stream.id)
            return
        self._start(stream, decoder)
        self._feed(stream, b"".join(frames), speech)

    def _start(self, stream: Stream, decoder: pocketsphinx.Decoder) -> None:
        stream.decoder = decoder
        self._models.activate(decoder, stream.lm)
        stream.cmn_tracker = sphinx_cmn.CmnTracker(decoder, stream.cmn or self._models.initial_cmn)
        decoder.start_utt()

    def _process(self, stream: Stream, pcm: bytes) -> None:
        assert stream.decoder is not None and stream.cmn_tracker is not None
        stream.decoder.process_raw(pcm, False, False)
        stream.cmn_tracker.fed(pcm)

    def _feed(self, stream: Stream, pcm: bytes, speech: list[bool]) -> None:
        seconds = len(speech) * FRAME_SECONDS
        stream.utterance_seconds += seconds
        if any(speech):
            stream.silence_seconds = 0.0
        else:
            stream.silence_seconds += seconds
        if stream.decoder is None:  # waiting for a decoder: keep it for later
            stream.waiting.append(pcm)
        else:
            self._process(stream, pcm)
            stream.since_interim += seconds
            if stream.since_interim >= INTERIM_EVERY_SECONDS:
                stream.since_interim = 0.0
                assert stream.cmn_tracker is not None
                stream.cmn_tracker.refresh()
                self._interim(stream)
        if stream.gate and stream.silence_seconds >= ABANDON_SECONDS:
            self._end(stream)  # noise the session's VAD did not take for speech
        elif stream.utterance_seconds >= MAX_UTTERANCE_SECONDS:
            self._final(stream)

    def _interim(self, stream: Stream) -> None:
        assert stream.decoder is not None
        hyp = stream.decoder.hyp()
        text = hyp.hypstr if hyp is not None else ""
        if text and text != stream.interim:
            stream.interim = text
            reply({"stream": stream.id, "type": "interim", "text": text})

    def _flush(self, stream: Stream) -> None:
        if not stream.gate:
            self._whole(stream)
            return
        if not stream.started and stream.recent:
            # the turn ended before the detector was sure: decode what was kept
            recent = list(stream.recent)
            stream.recent.clear()
            if any(s for _, s in recent):
                self._begin(stream, [f for f, _ in recent], [s for _, s in recent])
        if stream.decoder is None and stream.waiting:
            self._wait_for_decoder(stream)
        self._final(stream)

    def _whole(self, stream: Stream) -> None:
        """A whole utterance at once, decoded with its own cepstral mean (batch normalization):
        no running estimate, so no caller's channel leaks into the next one's, and a fresh
        stream's first word is heard as well as its last."""
        pcm = b"".join(stream.waiting) + bytes(stream.pending)
        stream.waiting, stream.pending = [], bytearray()
        seconds = len(pcm) / (2 * SAMPLE_RATE)
        text = ""
        words: list[tuple[str, float]] = []
        if pcm:
            decoder = self._models.batch_decoder()
            self._models.activate(decoder, stream.lm)
            decoder.start_utt()
            decoder.process_raw(pcm, False, True)
            decoder.end_utt()
            hyp = decoder.hyp()
            if hyp is not None:
                text, words = hyp.hypstr, _word_posteriors(decoder)
        reply(
            {
                "stream": stream.id,
                "type": "final",
                "text": text,
                "words": words,
                "audio": round(seconds, 3),
            }
        )
        self._reset(stream)

    def _wait_for_decoder(self, stream: Stream) -> None:
        """A turn ended while all decoders were busy: borrow a fresh one for it."""
        decoder = self._models.acquire(force=True)
        assert decoder is not None
        if stream.id in self._queue:
            self._queue.remove(stream.id)
        waiting, stream.waiting = stream.waiting, []
        self._start(stream, decoder)
        self._process(stream, b"".join(waiting))

    def _final(self, stream: Stream) -> None:
        started = time.perf_counter()
        text = ""
        words: list[tuple[str, float]] = []
        audio = stream.utterance_seconds
        if stream.decoder is not None:
            stream.decoder.end_utt()
            hyp = stream.decoder.hyp()
            if hyp is not None:
                text, words = hyp.hypstr, _word_posteriors(stream.decoder)
            self._release(stream)
        reply(
            {
                "stream": stream.id,
                "type": "final",
                "text": text,
                "words": words,
                "audio": round(audio, 3),
                "decode_ms": round((time.perf_counter() - started) * 1000, 1),
            }
        )
        self._reset(stream)

    def _end(self, stream: Stream) -> None:
        """Drops the utterance without a final (noise, or the stream closed mid-utterance)."""
        if stream.decoder is not None:
            stream.decoder.end_utt()
            self._release(stream)
        self._reset(stream)

    def _reset(self, stream: Stream) -> None:
        stream.started = False
        stream.waiting = []
        stream.utterance_seconds = stream.silence_seconds = stream.since_interim = 0.0
        stream.interim = ""

    def _release(self, stream: Stream) -> None:
        decoder, tracker = stream.decoder, stream.cmn_tracker
        assert decoder is not None and tracker is not None
        tracker.refresh()
        stream.cmn = tracker.mean()
        stream.decoder = stream.cmn_tracker = None
        self._models.release(decoder)
        while self._queue:
            waiting = self._streams.get(self._queue.popleft())
            if waiting is None or not waiting.waiting:
                continue
            free = self._models.acquire()
            if free is None:
                break
            pcm, waiting.waiting = b"".join(waiting.waiting), []
            self._start(waiting, free)
            self._process(waiting, pcm)
            break


def _word_posteriors(decoder: pocketsphinx.Decoder) -> list[tuple[str, float]]:
    """The best path's words with their posterior probabilities in the word lattice: how much
    of the decoder's belief, summed over the paths it kept, agrees on each word there. Fillers
    (silence, breath, noise) and sentence marks are left out, as they are from the text."""
    words = []
    for seg in decoder.seg():
        word = _VARIANT.sub("", seg.word)
        if _PLAIN.fullmatch(word):
            words.append((word, round(min(1.0, max(0.0, seg.prob)), 3)))
    return words


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def serve(stdin: IO[bytes], cache_dir: Path) -> None:
    try:
        server = Server(Models(cache_dir))
    except Exception as e:
        reply({"stream": 0, "type": "error", "message": _describe(e)})
        sys.exit(1)
    reply({"stream": 0, "type": "ready"})
    while True:
        header = stdin.read(HEADER.size)
        if len(header) < HEADER.size:
            return
        op, stream_id, length = HEADER.unpack(header)
        payload = stdin.read(length) if length else b""
        if len(payload) < length:
            return
        server.handle(op, stream_id, payload)


if __name__ == "__main__":
    serve(sys.stdin.buffer, Path(sys.argv[1]))
