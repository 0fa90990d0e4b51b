"""How often the offline agent answers a spoken question right, measured without a room.

Each question's audio goes through the worker's own code path: PocketSphinxSTT's stream (the
agent's language model, the decoder child process, its onset detection and flush) in 20 ms
frames, then ResponderLLM picks the answer from the transcript. Only transport is left out:
the end-to-end tests cover that with a few questions through a real LiveKit room.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from livekit import rtc
from livekit.agents import stt

from agent_worker.engines.factory import recognition_phrases
from agent_worker.engines.pocketsphinx_stt import PocketSphinxSTT
from agent_worker.engines.responder_llm import ResponderLLM
from agent_worker.engines.sphinx_engine import SphinxEngine
from devstack.spoken_questions import SpeechMaker, SpokenQuestion, demo_agent, read_wav, spoken_set
from voice_common.agent_config import AgentConfig

RIGHT, WRONG, NOT_UNDERSTOOD = "right", "wrong FAQ", "did not understand"
OUTCOMES = (RIGHT, WRONG, NOT_UNDERSTOOD)
FRAME_S = 0.02
TRAILING_SILENCE_S = 0.4  # what the session's VAD waits before it ends the turn


@dataclass(frozen=True)
class Heard:
    question: SpokenQuestion
    transcript: str
    answered: int | None  # the FAQ item answered, None for the fallback
    words: tuple[tuple[str, float], ...] = ()  # the recognizer's words and their posteriors

    @property
    def outcome(self) -> str:
        if self.answered == self.question.expected:
            return RIGHT
        return NOT_UNDERSTOOD if self.answered is None else WRONG


def tally(heard: Sequence[Heard]) -> dict[str, collections.Counter[str]]:
    """Outcomes overall, per condition, voice family and speed, and split into answerable and
    off-topic questions."""
    out: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for h in heard:
        q = h.question
        scope = "answerable" if q.expected is not None else "off-topic"
        for group in (
            "all",
            q.condition,
            scope,
            f"{q.condition}, {scope}",
            q.family,
            f"{q.family}, {q.condition}",
            f"{q.speed} wpm",
        ):
            out[group][h.outcome] += 1
    return out


def share(counts: collections.Counter[str], outcome: str) -> float:
    total = sum(counts.values())
    return counts[outcome] / total if total else 0.0


async def hear_all(
    questions: Sequence[SpokenQuestion],
    config: AgentConfig,
    maker: SpeechMaker,
    cache_dir: Path,
    *,
    decoders: int = 2,
    adapt: bool = True,
) -> list[Heard]:
    """Decodes on `decoders` engines (child processes) at once, as fast as they go; with
    `adapt` off, on the general English model alone (what the agent model is measured against)."""
    responder = ResponderLLM(config.faq, config.fallback)
    answers = {item.answer: i for i, item in enumerate(config.faq)}
    phrases = recognition_phrases(config) if adapt else []
    engines = [SphinxEngine(cache_dir) for _ in range(max(1, decoders))]
    todo: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(questions)):
        todo.put_nowait(i)
    results: list[Heard | None] = [None] * len(questions)

    async def work(engine: SphinxEngine) -> None:
        recognizer = PocketSphinxSTT(engine=engine, phrases=phrases)
        while not todo.empty():
            i = todo.get_nowait()
            q = questions[i]
            audio, rate = await asyncio.to_thread(read_wav, maker.wav(q))
            text, words = await transcribe(recognizer, audio, rate)
            answer = responder.answer_text(text, words)
            results[i] = Heard(q, text, answers.get(answer), words)

    try:
        await asyncio.gather(*(work(e) for e in engines))
    finally:
        for engine in engines:
            await asyncio.to_thread(engine.close)
    return [h for h in results if h is not None]


def read_exactly(questions: Sequence[SpokenQuestion], config: AgentConfig) -> list[Heard]:
    """The responder given the words as written: the ceiling a perfect recognizer would reach."""
    responder = ResponderLLM(config.faq, config.fallback)
    answers = {item.answer: i for i, item in enumerate(config.faq)}
    return [Heard(q, q.text, answers.get(responder.answer_text(q.text))) for q in questions]


async def transcribe(
    recognizer: PocketSphinxSTT, audio: np.ndarray, rate: int
) -> tuple[str, tuple[tuple[str, float], ...]]:
    """The final transcripts of one utterance fed as a caller's microphone would, ended by a
    flush as the session's VAD would after its silence; with their words' posteriors."""
    step = int(rate * FRAME_S)
    tail = np.zeros(int(rate * TRAILING_SILENCE_S), dtype=np.int16)
    samples = np.concatenate([audio, tail])
    stream = recognizer.stream()
    for i in range(0, len(samples), step):
        chunk = samples[i : i + step]
        stream.push_frame(rtc.AudioFrame(chunk.tobytes(), rate, 1, len(chunk)))
    stream.end_input()
    finals = [
        ev.alternatives[0]
        async for ev in stream
        if ev.type == stt.SpeechEventType.FINAL_TRANSCRIPT and ev.alternatives
    ]
    await stream.aclose()
    words = tuple((str(w), float(w.confidence or 0.0)) for f in finals for w in f.words or [])
    return " ".join(f.text for f in finals), words


def main() -> None:
    """`python -m devstack.asr_accuracy [--tuning] [--full] OUT.json`: the set's transcripts,
    word posteriors and answers, to choose recognizer and responder settings on (--tuning)
    or to look at what the held-out set's numbers are made of."""
    import argparse
    import json

    from livekit.agents import resources

    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--tuning", action="store_true", help="the tuning phrasings")
    parser.add_argument("--full", action="store_true", help="every voice and speed")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "voicegw" / "asr")
    parser.add_argument("--decoders", type=int, default=2)
    args = parser.parse_args()
    config = demo_agent()
    maker = SpeechMaker(
        args.work / "spoken-set", Path(resources.__file__).parent / "office-ambience.ogg"
    )
    questions = spoken_set(sample=not args.full, tuning=args.tuning)
    heard = asyncio.run(
        hear_all(questions, config, maker, args.work / "asr-cache", decoders=args.decoders)
    )
    rows = [
        {
            "text": h.question.text,
            "expected": h.question.expected,
            "voice": h.question.voice,
            "family": h.question.family,
            "speed": h.question.speed,
            "condition": h.question.condition,
            "transcript": h.transcript,
            "words": h.words,
            "answered": h.answered,
        }
        for h in heard
    ]
    args.out.write_text(json.dumps(rows, indent=1))
    for group, counts in sorted(tally(heard).items()):
        print(group, {o: round(share(counts, o), 3) for o in OUTCOMES}, sum(counts.values()))


if __name__ == "__main__":
    main()
