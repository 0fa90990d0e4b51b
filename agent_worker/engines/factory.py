"""Turns the config's engine strings ("provider" or "provider:model") into livekit-agents objects.

Every failure becomes an EngineConfigError whose message names the engine string and the reason
and is safe to log: vendor exception text is never copied into it, since it may echo a key.
Optional vendor plugins are imported only when asked for, so the offline stack needs none.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from livekit.agents import __version__ as agents_version
from livekit.agents import llm, stt, tts, vad
from livekit.plugins import openai, silero

from agent_worker.engines.brain_llm import BrainLLM
from agent_worker.engines.espeak_tts import EspeakTTS
from agent_worker.engines.pocketsphinx_stt import PocketSphinxSTT
from agent_worker.engines.responder_llm import ResponderLLM
from agent_worker.engines.sphinx_engine import SphinxEngine
from voice_common.agent_config import AgentConfig
from voice_common.brain import Brain, BrainConfigError, engine_for

# the same grammar agent_config validates, repeated so engine strings from anywhere are checked
_ENGINE_RE = re.compile(r"^([a-z][a-z0-9_-]*)(?::([A-Za-z0-9_./@+-]+))?$")
_API_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "deepgram": "DEEPGRAM_API_KEY",
    "cartesia": "CARTESIA_API_KEY",
}

T = TypeVar("T")


class EngineConfigError(Exception):
    def __init__(self, engine: str, reason: str, *, kind: str = "engine") -> None:
        shown = engine if len(engine) <= 80 else engine[:77] + "..."
        super().__init__(f"{kind} engine {shown!r}: {reason}")
        self.engine = engine
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class EngineSpec:
    provider: str
    model: str | None


def parse_engine(value: str) -> EngineSpec:
    match = _ENGINE_RE.match(value)
    if match is None:
        raise EngineConfigError(value, "expected 'provider' or 'provider:model'")
    return EngineSpec(provider=match.group(1), model=match.group(2))


def _spec(value: str, kind: str, providers: set[str]) -> EngineSpec:
    try:
        spec = parse_engine(value)
    except EngineConfigError as e:
        raise EngineConfigError(value, e.reason, kind=kind) from None
    if spec.provider not in providers:
        known = ", ".join(sorted(providers))
        raise EngineConfigError(value, f"unknown provider (known: {known})", kind=kind)
    return spec


def _no_model(spec: EngineSpec, value: str, kind: str) -> None:
    """A model the engine would ignore is rejected, so a typo never silently does nothing."""
    if spec.model is not None:
        raise EngineConfigError(value, f"{spec.provider} takes no ':model' part", kind=kind)


def _model(spec: EngineSpec, value: str, kind: str) -> str:
    if spec.model is None:
        raise EngineConfigError(
            value, f"{spec.provider} needs a model, e.g. '{spec.provider}:<model>'", kind=kind
        )
    return spec.model


def _require_key(spec: EngineSpec, value: str, kind: str) -> None:
    """Checked up front: vendor plugins fail late or with messages we cannot safely repeat."""
    env = _API_KEY_ENV[spec.provider]
    if not os.environ.get(env):
        raise EngineConfigError(value, f"the {env} environment variable is not set", kind=kind)


def _import_plugin(spec: EngineSpec, value: str, kind: str) -> ModuleType:
    name = spec.provider
    try:
        return importlib.import_module(f"livekit.plugins.{name}")
    except ImportError:
        raise EngineConfigError(
            value,
            # pinned so installing the extra cannot move the framework under the worker
            f"the {name} plugin is not installed; "
            f"pip install 'livekit-agents[{name}]=={agents_version}'",
            kind=kind,
        ) from None


def _construct(value: str, kind: str, build: Callable[[], T]) -> T:
    try:
        return build()
    except EngineConfigError:
        raise
    except Exception as e:
        # only the type: the vendor's message may contain credentials or URLs with tokens
        raise EngineConfigError(
            value, f"the plugin failed to initialize ({type(e).__name__})", kind=kind
        ) from None


def build_vad(
    spec_str: str, prewarmed: vad.VAD | None = None, *, min_silence_seconds: float = 0.55
) -> vad.VAD:
    """Loading Silero takes a while, so the worker's prewarm step can pass its instance in.

    `min_silence_seconds` is how long a pause ends an utterance: every millisecond of it is
    added to the agent's answer time, and too little cuts callers off mid-sentence."""
    spec = _spec(spec_str, "vad", {"silero"})
    _no_model(spec, spec_str, "vad")
    if prewarmed is not None:
        return prewarmed
    return _construct(
        spec_str, "vad", lambda: silero.VAD.load(min_silence_duration=min_silence_seconds)
    )


def recognition_phrases(config: AgentConfig) -> list[str]:
    """What the agent expects to hear, for recognizers that can be biased toward it: its FAQ
    questions and keywords, its greeting (callers echo its words) and, when escalation is on,
    the ways to ask for a person (left out, "operator" was pulled toward FAQ words and the
    caller who asked for a human never got one). Empty without an FAQ: an agent that answers
    anything gets the general model."""
    if not config.faq:
        return []
    phrases = [config.greeting]
    for item in config.faq:
        phrases += item.questions
        phrases += item.keywords
    if config.escalation.enabled:
        phrases += config.escalation.phrases
    return phrases


def build_stt(
    spec_str: str,
    language: str,
    *,
    sphinx: SphinxEngine | None = None,
    phrases: Sequence[str] = (),
) -> stt.STT[Any]:
    """`pocketsphinx:<lang>` picks the model language; plain `pocketsphinx` uses `language`.

    PocketSphinx decodes in `sphinx`, the worker process's shared engine (one of its own
    without), biased toward `phrases`."""
    kind = "stt"
    spec = _spec(spec_str, kind, {"pocketsphinx", "openai", "deepgram"})
    if spec.provider == "pocketsphinx":
        try:
            return PocketSphinxSTT(language=spec.model or language, engine=sphinx, phrases=phrases)
        except ValueError as e:
            raise EngineConfigError(spec_str, str(e), kind=kind) from None
    base_language = language.split("-")[0].lower()
    if spec.provider == "openai":
        model = _model(spec, spec_str, kind)
        _require_key(spec, spec_str, kind)
        return _construct(spec_str, kind, lambda: openai.STT(model=model, language=base_language))
    built = _build_vendor(spec, spec_str, kind, "STT", {"language": language})
    if not isinstance(built, stt.STT):
        raise EngineConfigError(spec_str, "the plugin's STT is not an stt.STT", kind=kind)
    return built


def build_llm(spec_str: str, config: AgentConfig) -> llm.LLM[Any]:
    """Both engines are the shared brain (voice_common.brain) in a livekit-agents adapter, so
    the agent answers a spoken question exactly as the gateway answers a typed one."""
    kind = "llm"
    spec = _spec(spec_str, kind, {"responder", "openai"})
    if spec.provider == "responder":
        _no_model(spec, spec_str, kind)
        return ResponderLLM(config.faq, config.fallback, config=config)
    _model(spec, spec_str, kind)
    _require_key(spec, spec_str, kind)
    config = config.model_copy(update={"llm": spec_str})
    keys = {spec.provider: os.environ.get(_API_KEY_ENV[spec.provider], "")}
    try:
        engine = engine_for(config, api_keys=keys)
    except BrainConfigError as exc:
        raise EngineConfigError(spec_str, str(exc), kind=kind) from None
    return BrainLLM(Brain(config, engine), provider=spec.provider)


def build_tts(spec_str: str, voice: str) -> tts.TTS[Any]:
    """`espeak:<voice>` names the espeak-ng voice; plain `espeak` uses `voice`."""
    kind = "tts"
    spec = _spec(spec_str, kind, {"espeak", "openai", "cartesia"})
    if spec.provider == "espeak":
        if shutil.which("espeak-ng") is None:
            raise EngineConfigError(
                spec_str, "the espeak-ng binary is not on PATH (apt install espeak-ng)", kind=kind
            )
        try:
            return EspeakTTS(voice=spec.model or voice)
        except ValueError as e:
            raise EngineConfigError(spec_str, str(e), kind=kind) from None
    if spec.provider == "openai":
        model = _model(spec, spec_str, kind)
        _require_key(spec, spec_str, kind)
        return _construct(spec_str, kind, lambda: openai.TTS(model=model, voice=voice))
    built = _build_vendor(spec, spec_str, kind, "TTS", {"voice": voice})
    if not isinstance(built, tts.TTS):
        raise EngineConfigError(spec_str, "the plugin's TTS is not a tts.TTS", kind=kind)
    return built


def _build_vendor(
    spec: EngineSpec, spec_str: str, kind: str, class_name: str, options: dict[str, str]
) -> object:
    """A vendor plugin (an optional extra) built with its model, if one was named."""
    plugin = _import_plugin(spec, spec_str, kind)
    _require_key(spec, spec_str, kind)
    options = options | ({"model": spec.model} if spec.model else {})
    return _construct(spec_str, kind, lambda: getattr(plugin, class_name)(**options))
