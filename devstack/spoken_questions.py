"""A spoken-question set made on the spot: every FAQ of the demo agent, plus questions it cannot
answer, said by two families of espeak-ng voices (its own formant voices, and MBROLA diphone
voices, which are built from recorded human speech) at two speeds, clean, under office noise at
10 dB SNR, and as 8 kHz telephone audio.

Two sets of phrasings, neither of them the catalogue's own example questions (a test asserts
it): callers do not read the FAQ before they call. QUESTIONS is held out: it measures, and
nothing is tuned on it. TUNING_QUESTIONS is what recognizer and responder settings are chosen
on (devstack.asr_accuracy --tuning); the two share no phrasing. Audio is synthesized into a
cache directory on first use (nothing recorded is committed) and reused while the text and
settings are the same.
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
from voice_gateway.catalogue import AgentCatalogue

CATALOGUE = Path(__file__).resolve().parents[1] / "voice_gateway" / "agents.yaml"

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
# Tuning phrasings: settings are chosen on these, never on QUESTIONS.
TUNING_QUESTIONS: dict[int | None, tuple[str, ...]] = {
    0: (
        "until what time are you open tonight",
        "when do you close on friday",
        "is your shop open on sunday",
        "what hours do you work",
        "is the shop open now",
        "what time do you start in the morning",
    ),
    1: (
        "what is the monthly price",
        "are there any fees",
        "how expensive is your service",
        "what does the basic plan cost per month",
        "is there a free trial",
        "how much money do I need",
    ),
    2: (
        "what should I call you",
        "are you a real person",
        "tell me your name",
        "who is this",
        "is this a computer talking",
        "what kind of assistant are you",
    ),
    3: (
        "where can I find you",
        "what street is your office on",
        "where is your shop",
        "how do I get to your office",
        "which city are you in",
        "where are you based",
    ),
    4: (
        "I would like to talk to a human",
        "what number can I call",
        "how do I reach your team",
        "can I send you an email",
        "is there someone I can talk to",
        "I need help from your support team",
    ),
    None: (
        "what time is it in london",
        "can you book a table for two",
        "tell me a joke",
        "how tall is mount everest",
        "I want to cancel my order",
        "what is the capital of france",
        "turn on the lights",
        "how do I bake bread",
        "who won the football game",
        "my computer will not start",
    ),
}
VOICE_FAMILIES: dict[str, tuple[str, ...]] = {
    # espeak-ng's own formant synthesis: robotic, far from any human voice
    "espeak": ("en-us", "en-us+f3", "en-gb", "en-us-nyc"),
    # espeak-ng driving MBROLA diphone voices (Debian's mbrola-*): cut from recorded speech
    "mbrola": ("mb-us1", "mb-us2", "mb-us3", "mb-en1"),
}
VOICES = tuple(v for family in VOICE_FAMILIES.values() for v in family)
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

    @property
    def family(self) -> str:
        return next(f for f, voices in VOICE_FAMILIES.items() if self.voice in voices)


def spoken_set(*, sample: bool = False, tuning: bool = False) -> list[SpokenQuestion]:
    """Every question in every voice, speed and condition; or, with `sample`, each question
    once per condition and voice family, voices and speeds taking turns (an eighth of it, for
    CI). `tuning` gives the tuning phrasings instead of the held-out ones."""
    out: list[SpokenQuestion] = []
    n = 0
    for expected, texts in (TUNING_QUESTIONS if tuning else QUESTIONS).items():
        for text in texts:
            for c, condition in enumerate(CONDITIONS):
                for family in VOICE_FAMILIES.values():
                    combos = [(v, s) for v in family for s in SPEEDS]
                    chosen = [combos[(n + 3 * c) % len(combos)]] if sample else combos
                    out += [SpokenQuestion(text, expected, v, s, condition) for v, s in chosen]
            n += 1
    return out


def demo_agent() -> AgentConfig:
    """The demo agent as the gateway sends it to the worker (the catalogue's own loader)."""
    config = AgentCatalogue.load(CATALOGUE).get("demo")
    assert config is not None, "the catalogue has no demo agent"
    return config


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
