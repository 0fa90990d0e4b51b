"""Measure 6: how often the demo agent answers a spoken question right (issue 10 targets).

The spoken set (devstack.spoken_questions) through the worker's recognizer and responder,
offline (devstack.asr_accuracy): the whole set with the agent's language model; the CI sample
with the general English model alone, to show what the agent model buys; and the responder
given the exact words, the ceiling any recognizer could reach with these phrasings.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livekit.agents import resources

from devstack.asr_accuracy import OUTCOMES, Heard, hear_all, read_exactly, share, tally
from devstack.spoken_questions import SPEEDS, VOICE_FAMILIES, SpeechMaker, demo_agent, spoken_set

GROUPS = (
    "all",
    "clean",
    "noisy",
    "phone",
    "answerable",
    "off-topic",
    *(
        f"{family}{condition}"
        for family in VOICE_FAMILIES
        for condition in ("", ", clean", ", noisy", ", phone")
    ),
    *(f"{speed} wpm" for speed in SPEEDS),
)


@dataclass
class AccuracyRun:
    name: str
    heard: list[Heard]
    seconds: float = 0.0

    def counts(self) -> dict[str, collections.Counter[str]]:
        return tally(self.heard)

    def share(self, group: str, outcome: str) -> float | None:
        counts = self.counts().get(group)
        return share(counts, outcome) if counts else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": round(self.seconds, 1),
            "shares": {
                g: {o: round(share(c, o), 4) for o in OUTCOMES} | {"n": sum(c.values())}
                for g, c in self.counts().items()
            },
            "heard": [
                {
                    "question": h.question.name,
                    "expected": h.question.expected,
                    "transcript": h.transcript,
                    "answered": h.answered,
                }
                for h in self.heard
            ],
        }


@dataclass
class AccuracyResult:
    runs: list[AccuracyRun] = field(default_factory=list)

    def run(self, name: str) -> AccuracyRun | None:
        return next((r for r in self.runs if r.name == name), None)


async def measure_accuracy(work_dir: Path, *, full: bool) -> AccuracyResult:
    config = demo_agent()
    maker = SpeechMaker(work_dir / "spoken-set", Path(resources.__file__).parent / NOISE_CLIP)
    cache = work_dir / "asr-cache"
    whole, sample = spoken_set(sample=not full), spoken_set(sample=True)
    result = AccuracyResult()
    result.runs.append(AccuracyRun("exact words (no recognizer)", read_exactly(whole, config)))
    for name, questions, adapt in (
        ("agent model", whole, True),
        ("general model only (CI sample)", sample, False),
    ):
        t = time.monotonic()
        heard = await hear_all(questions, config, maker, cache, adapt=adapt)
        result.runs.append(AccuracyRun(name, heard, time.monotonic() - t))
    return result


NOISE_CLIP = "office-ambience.ogg"
