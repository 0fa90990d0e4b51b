"""The factory is where a config typo or a missing key must fail loudly and safely."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import pytest
from livekit.agents import vad
from livekit.plugins import openai, silero

from agent_worker.engines import factory
from agent_worker.engines.brain_llm import BrainLLM
from agent_worker.engines.espeak_tts import EspeakTTS
from agent_worker.engines.factory import (
    EngineConfigError,
    EngineSpec,
    build_llm,
    build_stt,
    build_tts,
    build_vad,
    parse_engine,
)
from agent_worker.engines.pocketsphinx_stt import PocketSphinxSTT
from agent_worker.engines.responder_llm import ResponderLLM
from voice_common.agent_config import AgentConfig, FaqItem
from voice_common.brain.openai_compat import OpenAICompatible

pytestmark = pytest.mark.unit

FAKE_KEY = "sk-test-not-a-real-key"


@pytest.fixture
def no_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture
def openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("silero", EngineSpec("silero", None)),
        ("pocketsphinx:en-us", EngineSpec("pocketsphinx", "en-us")),
        ("openai:gpt-4o-mini", EngineSpec("openai", "gpt-4o-mini")),
        ("openai:gpt-4o-mini-transcribe", EngineSpec("openai", "gpt-4o-mini-transcribe")),
        ("my_vendor-2:org/model@v1.5+x", EngineSpec("my_vendor-2", "org/model@v1.5+x")),
    ],
)
def test_parse_engine_accepts_provider_and_optional_model(value: str, expected: EngineSpec) -> None:
    assert parse_engine(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "openai:", ":gpt-4o", "OpenAI:gpt-4o", "openai:gpt 4o", " silero", "a:b:c", "1abc"],
)
def test_parse_engine_rejects_bad_format(value: str) -> None:
    with pytest.raises(EngineConfigError, match="expected 'provider' or 'provider:model'"):
        parse_engine(value)


def test_error_message_truncates_long_engine_strings() -> None:
    with pytest.raises(EngineConfigError) as info:
        parse_engine("x" * 500 + " ")
    assert len(str(info.value)) < 200


def test_build_vad_loads_silero() -> None:
    assert isinstance(build_vad("silero"), silero.VAD)


def test_build_vad_reuses_a_prewarmed_instance() -> None:
    prewarmed = silero.VAD.load()
    assert build_vad("silero", prewarmed=prewarmed) is prewarmed


def test_build_vad_returns_livekit_vad_type() -> None:
    assert isinstance(build_vad("silero"), vad.VAD)


def test_build_vad_passes_min_silence_to_silero() -> None:
    built = build_vad("silero", min_silence_seconds=0.3)
    assert isinstance(built, silero.VAD)
    assert built.min_silence_duration == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("spec", "language"), [("pocketsphinx:en-us", "fr"), ("pocketsphinx", "en")]
)
def test_build_stt_pocketsphinx(spec: str, language: str) -> None:
    assert isinstance(build_stt(spec, language), PocketSphinxSTT)


def test_build_stt_pocketsphinx_rejects_other_languages() -> None:
    with pytest.raises(EngineConfigError, match=r"stt engine 'pocketsphinx:de'.*US English"):
        build_stt("pocketsphinx:de", "en")


async def test_build_stt_openai(openai_key: None) -> None:
    built = build_stt("openai:gpt-4o-mini-transcribe", "en-US")
    assert isinstance(built, openai.STT)
    assert built.model == "gpt-4o-mini-transcribe"
    await built.aclose()


def test_build_llm_responder_uses_config_faq() -> None:
    config = AgentConfig(faq=[FaqItem(keywords=["hours"], answer="Nine to five.")])
    built = build_llm("responder", config)
    assert isinstance(built, ResponderLLM)


async def test_build_llm_openai_with_base_url(openai_key: None) -> None:
    config = AgentConfig(llm="openai:gpt-4o-mini", llm_base_url="http://127.0.0.1:9/v1")
    built = build_llm(config.llm, config)
    # The shared brain's OpenAI-compatible client, as the gateway's text channels use it.
    assert isinstance(built, BrainLLM)
    assert isinstance(built.brain.engine, OpenAICompatible)
    assert built.model == "gpt-4o-mini"
    assert "http://127.0.0.1:9/v1/chat/completions" in repr(built.brain.engine)
    await built.aclose()


@pytest.mark.parametrize(("spec", "voice"), [("espeak:en-us", "ignored"), ("espeak", "en-gb")])
def test_build_tts_espeak(spec: str, voice: str) -> None:
    built = build_tts(spec, voice)
    assert isinstance(built, EspeakTTS)
    assert built.model == (spec.split(":")[1] if ":" in spec else voice)


async def test_build_tts_openai(openai_key: None) -> None:
    built = build_tts("openai:gpt-4o-mini-tts", "alloy")
    assert isinstance(built, openai.TTS)
    await built.aclose()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: build_vad("webrtc"), r"vad engine 'webrtc': unknown provider \(known: silero\)"),
        (lambda: build_stt("whisper:base", "en"), r"stt engine 'whisper:base': unknown provider"),
        (lambda: build_llm("ollama:llama3", AgentConfig()), r"llm engine 'ollama:llama3': unknown"),
        (lambda: build_tts("piper", "en-us"), r"tts engine 'piper': unknown provider"),
        (lambda: build_tts("espeak:", "en-us"), r"tts engine 'espeak:': expected 'provider'"),
        (lambda: build_vad("silero:v5"), r"vad engine 'silero:v5': silero takes no ':model'"),
        (lambda: build_llm("responder:big", AgentConfig()), r"responder takes no ':model'"),
        (lambda: build_tts("espeak:-rf", "en-us"), r"invalid espeak-ng voice name '-rf'"),
    ],
)
def test_bad_engine_strings_raise_clear_errors(build: Callable[[], object], message: str) -> None:
    with pytest.raises(EngineConfigError, match=message):
        build()


@pytest.mark.parametrize(
    "build",
    [
        lambda: build_stt("openai:gpt-4o-mini-transcribe", "en"),
        lambda: build_llm("openai:gpt-4o-mini", AgentConfig()),
        lambda: build_tts("openai:tts-1", "alloy"),
    ],
)
def test_openai_without_api_key_is_a_config_error(
    no_openai_key: None, build: Callable[[], object]
) -> None:
    with pytest.raises(EngineConfigError, match="OPENAI_API_KEY environment variable is not set"):
        build()


def test_openai_needs_a_model(openai_key: None) -> None:
    with pytest.raises(EngineConfigError, match=r"llm engine 'openai': openai needs a model"):
        build_llm("openai", AgentConfig())


def test_vendor_construction_failure_never_leaks_its_message(
    openai_key: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(**_: object) -> None:
        raise ValueError(f"bad credentials {FAKE_KEY}")

    monkeypatch.setattr(factory.openai, "TTS", explode)
    with pytest.raises(EngineConfigError) as info:
        build_tts("openai:tts-1", "alloy")
    assert "failed to initialize (ValueError)" in str(info.value)
    assert FAKE_KEY not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize(
    ("build", "extra"),
    [
        (lambda: build_stt("deepgram:nova-3", "en"), "deepgram"),
        (lambda: build_tts("cartesia:sonic-2", "en-us"), "cartesia"),
    ],
)
def test_missing_optional_plugin_names_the_extra(build: Callable[[], object], extra: str) -> None:
    if importlib.util.find_spec(f"livekit.plugins.{extra}") is not None:
        pytest.skip(f"the {extra} plugin is installed here")
    expected = rf"pip install 'livekit-agents\[{extra}\]==1\.8\.9'"
    with pytest.raises(EngineConfigError, match=expected):
        build()


def test_espeak_binary_missing_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EngineConfigError, match="espeak-ng binary is not on PATH"):
        build_tts("espeak:en-us", "en-us")


def test_the_recognizer_is_biased_toward_asking_for_a_person_too() -> None:
    """A caller who asks for an operator must be heard as asking for one, not as a near FAQ word."""
    faq = [FaqItem(keywords=["hours"], questions=["when are you open"], answer="Nine to five.")]
    phrases = factory.recognition_phrases(AgentConfig(faq=faq))
    assert "when are you open" in phrases and "operator" in phrases

    off = AgentConfig.model_validate(
        {"faq": [item.model_dump() for item in faq], "escalation": {"enabled": False}}
    )
    assert "operator" not in factory.recognition_phrases(off)
    assert factory.recognition_phrases(AgentConfig()) == []
