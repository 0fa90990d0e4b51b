"""A spoken-question set made on the spot: every FAQ of the demo agent, plus questions it cannot
answer, said by several espeak-ng voices at two speeds, clean, under office noise at 10 dB SNR,
and as 8 kHz telephone audio.

The phrasings are deliberately not the catalogue's own example questions (a test asserts it):
callers do not read the FAQ before they call. Audio is synthesized into a cache directory on
first use (nothing recorded is committed) and reused while the text and settings are the same.
"""

from __future__ import annotations

import hashlib
import subprocess
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voice_common.agent_config import AgentConfig

# Index into the demo agent's FAQ (voice_gateway/agents.yaml), or None: not answerable.
QUESTIONS: dict[int | None, tuple[str, ...]] = {
    0: (  # opening hours
        "when does your shop open in the morning",
        "how late can I come by this evening",
        "are you closed on public holidays",
        "what are your business hours",
        "do you open early on monday",
    ),
    1: (  # prices
        "how much will I be charged each month",
        "what does your service cost",
        "is the basic plan expensive",
        "can you tell me the price please",
        "do I need to pay anything to start",
    ),
    2: (  # the agent's name
        "may I ask who I am speaking with",
        "do you have a name",
        "am I talking to a machine",
        "who am I speaking to right now",
        "what is the name of this assistant",
    ),
    3: (  # location
        "where exactly is your office",
        "what is the address of your shop",
        "how can I find your location",
        "in which street are you located",
        "can you give me directions to your office",
    ),
    4: (  # a person to talk to
        "I want to speak to a real person",
        "how do I get in touch with you",
        "can you give me your phone number",
        "is there an email I can write to",
        "please connect me to customer support",
    ),
    None: (  # nothing the demo agent knows
        "what is the weather going to be like",
        "can you order a pizza for me",
        "how old is the universe",
        "I need to reset my password",
        "do you sell gift vouchers",
        "what is two plus two",
        "play my favourite song",
        "my parcel has not arrived yet",
    ),
}
VOICES = ("en-us", "en-us+f3", "en-gb", "en-us-nyc")
SPEEDS = (140, 180)  # words per minute; espeak-ng's default is 175
CONDITIONS = ("clean", "noisy", "phone")
NOISE_SNR_DB = 10.0
SAMPLE_RATE = 16000
PHONE_RATE = 8000
LEAD_SILENCE_S = 0.4
NOISE_CLIP = "office-ambience.ogg"  # livekit-agents' own ambience, what our agents play


@dataclass(frozen=True)
class SpokenQuestion:
    text: str
    expected: int | None  # the FAQ item that answers it, None if none does
    voice: str
    speed: int
    condition: str

    @property
    def name(self) -> str:
        return f"{self.condition}/{self.voice}/{self.speed}/{self.text}"


def spoken_set(*, sample: bool = False) -> list[SpokenQuestion]:
    """Every question in every voice, speed and condition; or, with `sample`, each question
    once per condition, voices and speeds taking turns (a sixth of it, for CI)."""
    out: list[SpokenQuestion] = []
    combos = [(v, s) for v in VOICES for s in SPEEDS]
    n = 0
    for expected, texts in QUESTIONS.items():
        for text in texts:
            for c, condition in enumerate(CONDITIONS):
                if sample:
                    voice, speed = combos[(n + 3 * c) % len(combos)]
                    out.append(SpokenQuestion(text, expected, voice, speed, condition))
                else:
                    for voice, speed in combos:
                        out.append(SpokenQuestion(text, expected, voice, speed, condition))
            n += 1
    return out


def catalogue_overlap(config: AgentConfig, texts: Iterable[str]) -> list[str]:
    """Test phrasings that contain one of the agent's example questions word for word."""
    questions = [_plain(q) for item in config.faq for q in item.questions]
    return [t for t in texts if any(q and q in _plain(t) for q in questions)]


def _plain(text: str) -> str:
    return " " + " ".join("".join(c if c.isalnum() else " " for c in text.lower()).split()) + " "


class SpeechMaker:
    """Synthesizes the set into `cache_dir` (16 kHz mono WAVs; 8 kHz for telephone copies)."""

    def __init__(self, cache_dir: Path, noise_clip: Path) -> None:
        self._dir = cache_dir
        self._noise_clip = noise_clip
        self._noise: np.ndarray | None = None

    def wav(self, q: SpokenQuestion) -> Path:
        key = hashlib.sha256(f"v1|{q.name}|{NOISE_SNR_DB}".encode()).hexdigest()[:20]
        path = self._dir / f"{key}.wav"
        if not path.exists():
            self._dir.mkdir(parents=True, exist_ok=True)
            clean = self._speak(q)
            if q.condition == "noisy":
                audio, rate = self._with_noise(clean, key), SAMPLE_RATE
            elif q.condition == "phone":
                audio, rate = _telephone(clean), PHONE_RATE
            else:
                audio, rate = clean, SAMPLE_RATE
            tmp = path.with_suffix(".tmp")
            _write_wav(tmp, audio, rate)
            tmp.replace(path)
        return path

    def _speak(self, q: SpokenQuestion) -> np.ndarray:
        wav = subprocess.run(
            ["espeak-ng", "-v", q.voice, "-s", str(q.speed), "--stdout", q.text],
            capture_output=True,
            check=True,
        ).stdout
        speech = _sox_to_pcm(["-t", "wav", "-"], wav, SAMPLE_RATE)
        lead = np.zeros(int(LEAD_SILENCE_S * SAMPLE_RATE), dtype=np.int16)
        return np.concatenate([lead, speech])

    def _with_noise(self, clean: np.ndarray, key: str) -> np.ndarray:
        if self._noise is None:
            self._noise = _sox_to_pcm([str(self._noise_clip)], b"", SAMPLE_RATE).astype(np.float64)
        noise = self._noise
        rng = np.random.default_rng(int(key[:8], 16))
        start = int(rng.integers(0, max(1, len(noise) - len(clean))))
        segment = np.resize(noise[start:], len(clean))
        speech = clean.astype(np.float64)
        voiced = speech[np.abs(speech) > 0.05 * np.abs(speech).max()]
        speech_power = float(np.mean(voiced**2))
        noise_power = float(np.mean(segment**2)) or 1.0
        gain = float(np.sqrt(speech_power / (noise_power * 10 ** (NOISE_SNR_DB / 10))))
        mixed: np.ndarray = np.clip(speech + gain * segment, -32768, 32767).astype(np.int16)
        return mixed


def _telephone(clean: np.ndarray) -> np.ndarray:
    """Telephone band (300-3400 Hz), 8 kHz, through G.711 mu-law and back."""
    mulaw = subprocess.run(
        [
            "sox", *_raw(SAMPLE_RATE), "-", "-t", "raw", "-r", str(PHONE_RATE),
            "-e", "mu-law", "-b", "8", "-c", "1", "-", "sinc", "300-3400",
        ],
        input=clean.tobytes(),
        capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    return _sox_to_pcm(
        ["-t", "raw", "-r", str(PHONE_RATE), "-e", "mu-law", "-b", "8", "-c", "1", "-"],
        mulaw,
        PHONE_RATE,
    )


def _raw(rate: int) -> list[str]:
    return ["-t", "raw", "-r", str(rate), "-e", "signed", "-b", "16", "-c", "1"]


def _sox_to_pcm(source: Sequence[str], data: bytes, rate: int) -> np.ndarray:
    out = subprocess.run(
        ["sox", *source, *_raw(rate), "-"], input=data, capture_output=True, check=True
    ).stdout
    return np.frombuffer(out, dtype=np.int16)


def _write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(audio.astype(np.int16).tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16), w.getframerate()
