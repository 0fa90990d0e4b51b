"""The agent config contract shared by the gateway (which resolves it) and the worker (runs it).

Free of livekit-agents imports, so the gateway validates `agentConfig` without loading the voice
stack.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

_ENGINE_RE = re.compile(r"^[a-z][a-z0-9_-]*(:[A-Za-z0-9_./@+-]+)?$")

VAD_PROVIDERS = frozenset({"silero"})
STT_PROVIDERS = frozenset({"pocketsphinx", "openai", "deepgram"})
LLM_PROVIDERS = frozenset({"responder", "openai"})
TTS_PROVIDERS = frozenset({"espeak", "openai", "cartesia"})


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class FaqItem(_Model):
    """One thing the offline responder knows: how callers ask about it and what it says.

    `keywords` are words that on their own say the question is about this item; `questions`
    are a few natural ways to ask it. Both teach the offline recognizer the agent's words and
    the responder what each item is about, so a question phrased differently still finds it.
    """

    keywords: list[str] = Field(min_length=1, max_length=32)
    questions: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=32
    )
    answer: str = Field(min_length=1, max_length=2000)


class BackgroundAudioConfig(_Model):
    enabled: bool = True
    ambient: str | None = Field(default="office-ambience.ogg", max_length=256)
    ambient_volume: float = Field(default=0.8, ge=0.0, le=1.0)
    thinking: list[str] = Field(
        default_factory=lambda: ["keyboard-typing.ogg", "keyboard-typing2.ogg"], max_length=8
    )
    thinking_volume: float = Field(default=0.7, ge=0.0, le=1.0)


TRANSFER_TARGET = r"^(sip:[^\s@]+@[^\s]+|tel:\+?[0-9*#-]{2,32})$"


class EscalationConfig(_Model):
    """When the caller asks for a person. The offline responder listens for `phrases`; an LLM
    engine gets a tool to call instead. Either way the agent says `message`, then the gateway
    transfers a phone caller to `transferTo`, or, with none (and for web sessions), ends the
    session `escalated` and sends integrations a `session.escalated` webhook with the transcript.
    """

    enabled: bool = True
    phrases: list[str] = Field(
        default_factory=lambda: [
            "speak to a person",
            "talk to a person",
            "real person",
            "human",
            "operator",
            "representative",
        ],
        max_length=64,
    )
    message: str = Field(
        default="Of course. I am passing you to a colleague now.", min_length=1, max_length=1000
    )
    transfer_to: str | None = Field(default=None, pattern=TRANSFER_TARGET, max_length=256)


def _check_engine(value: str, providers: frozenset[str], kind: str) -> str:
    if not _ENGINE_RE.match(value):
        raise ValueError(f"{kind} engine must look like 'provider' or 'provider:model'")
    provider = value.split(":", 1)[0]
    if provider not in providers:
        raise ValueError(f"unknown {kind} provider {provider!r}; known: {sorted(providers)}")
    return value


class AgentConfig(_Model):
    instructions: str = Field(
        default="You are a helpful voice assistant. Answer briefly.", max_length=8000
    )
    greeting: str = Field(default="Hello! How can I help you today?", max_length=1000)
    language: str = Field(default="en", pattern=r"^[a-z]{2}(-[A-Za-z]{2})?$")
    voice: str = Field(default="en-us", max_length=64)
    vad: str = "silero"
    stt: str = "pocketsphinx:en-us"
    llm: str = "responder"
    tts: str = "espeak:en-us"
    llm_base_url: str | None = Field(default=None, max_length=512)
    faq: list[FaqItem] = Field(default_factory=list, max_length=64)
    fallback: str = Field(
        default="Sorry, I did not catch that. Could you say it another way?", max_length=1000
    )
    background_audio: BackgroundAudioConfig = Field(default_factory=BackgroundAudioConfig)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    max_duration_seconds: int = Field(default=1800, ge=5, le=86400)

    @field_validator("vad")
    @classmethod
    def _vad(cls, v: str) -> str:
        return _check_engine(v, VAD_PROVIDERS, "vad")

    @field_validator("stt")
    @classmethod
    def _stt(cls, v: str) -> str:
        return _check_engine(v, STT_PROVIDERS, "stt")

    @field_validator("llm")
    @classmethod
    def _llm(cls, v: str) -> str:
        return _check_engine(v, LLM_PROVIDERS, "llm")

    @field_validator("tts")
    @classmethod
    def _tts(cls, v: str) -> str:
        return _check_engine(v, TTS_PROVIDERS, "tts")

    def with_overrides(self, overrides: dict[str, Any]) -> AgentConfig:
        """Deep-merge camelCase overrides over this config and validate the result as a whole.

        Unknown fields fail (extra="forbid") at any depth, so a typo never silently does nothing.
        """
        merged = _deep_merge(self.model_dump(by_alias=True), overrides)
        return AgentConfig.model_validate(merged)


class DispatchMetadata(_Model):
    """What the gateway puts in the agent dispatch: all the worker needs to run a session."""

    session_id: str
    agent_id: str
    user_identity: str
    config: AgentConfig
    # Which dispatch of the session this is (the gateway re-dispatches once when no worker took
    # the first); the worker names it when it claims the session, so a late job of a replaced
    # dispatch is turned away instead of becoming a second agent.
    attempt: int = Field(default=1, ge=1)
    # "web" or "phone": a phone caller is a SIP participant whose call must be answered first.
    channel: str = "web"


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
