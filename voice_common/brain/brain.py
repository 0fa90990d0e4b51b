"""An agent's brain: its config and the engine its `llm` string names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from voice_common.agent_config import AgentConfig
from voice_common.brain.engine import Engine, Request
from voice_common.brain.errors import BrainConfigError
from voice_common.brain.openai_compat import OpenAICompatible
from voice_common.brain.prompt import openai_messages, system_prompt
from voice_common.brain.reply import Reply
from voice_common.brain.responder import Responder
from voice_common.brain.turns import Turn

# The environment variable (worker) or setting (gateway) holding each provider's key.
API_KEY_NAMES = {"openai": "OPENAI_API_KEY"}


def engine_for(
    config: AgentConfig,
    *,
    api_keys: Mapping[str, str],
    http: aiohttp.ClientSession | None = None,
) -> Engine:
    """`responder` (offline) or `openai:<model>` at the agent's `llmBaseUrl` (any
    OpenAI-compatible server). `api_keys` maps a provider to its key."""
    provider, _, model = config.llm.partition(":")
    if provider == "responder":
        if model:
            raise BrainConfigError(f"llm engine {config.llm!r}: responder takes no ':model' part")
        return Responder(config.faq, config.fallback)
    if provider == "openai":
        if not model:
            raise BrainConfigError(f"llm engine {config.llm!r}: openai needs a model")
        key = api_keys.get(provider)
        if not key:
            raise BrainConfigError(
                f"llm engine {config.llm!r}: the {API_KEY_NAMES[provider]} key is not set"
            )
        return OpenAICompatible(model=model, api_key=key, base_url=config.llm_base_url, http=http)
    raise BrainConfigError(f"llm engine {config.llm!r}: unknown provider {provider!r}")


class Brain:
    def __init__(self, config: AgentConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self.instructions = system_prompt(config)

    def request(
        self,
        turns: Sequence[Turn],
        *,
        tools: Sequence[dict[str, Any]] = (),
        extra_instructions: Sequence[str] = (),
    ) -> Request:
        return Request(
            messages=openai_messages(self.instructions, turns, extra_instructions),
            turns=tuple(turns),
            tools=tuple(tools),
        )

    def reply(
        self,
        turns: Sequence[Turn],
        *,
        tools: Sequence[dict[str, Any]] = (),
        extra_instructions: Sequence[str] = (),
    ) -> Reply:
        """The agent's next message after `turns`; nothing runs until it is iterated."""
        request = self.request(turns, tools=tools, extra_instructions=extra_instructions)
        return Reply(self.engine, request)
