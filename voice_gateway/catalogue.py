"""The agent catalogue: which agents exist and their base config, validated whole at start."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from voice_common.agent_config import AgentConfig

AGENT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class CatalogueError(Exception):
    pass


# What a publishable key (a browser) may override unless the agent lists its own
# `publishableOverrides`; instructions are left out so a web page cannot rewrite the prompt.
DEFAULT_PUBLISHABLE_OVERRIDES = ("greeting", "language", "voice")
_OVERRIDABLE = frozenset(f.alias or name for name, f in AgentConfig.model_fields.items())


@dataclass(frozen=True, slots=True)
class AgentListing:
    """What a client may show about an agent (GET /v1/agents): never its prompt or engines."""

    id: str
    name: str
    description: str
    language: str


class AgentCatalogue:
    def __init__(
        self,
        agents: dict[str, AgentConfig],
        publishable_overrides: dict[str, frozenset[str]] | None = None,
        labels: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        self._agents = agents
        self._publishable_overrides = publishable_overrides or {}
        self._labels = labels or {}

    @classmethod
    def load(cls, path: Path) -> AgentCatalogue:
        raw: Any = yaml.safe_load(path.read_text())
        if not isinstance(raw, dict) or not isinstance(raw.get("agents"), dict):
            raise CatalogueError(f"{path}: expected a mapping with an 'agents' mapping")
        agents: dict[str, AgentConfig] = {}
        overrides: dict[str, frozenset[str]] = {}
        labels: dict[str, tuple[str, str]] = {}
        for agent_id, body in raw["agents"].items():
            if not AGENT_ID_RE.match(str(agent_id)):
                raise CatalogueError(f"{path}: invalid agent id {agent_id!r}")
            if body is not None and not isinstance(body, dict):
                raise CatalogueError(f"{path}: agent {agent_id!r}: expected a mapping")
            body = dict(body or {})
            overrides[str(agent_id)] = _publishable_overrides(
                path, agent_id, body.pop("publishableOverrides", None)
            )
            labels[str(agent_id)] = _labels(path, agent_id, body)
            try:
                agents[str(agent_id)] = AgentConfig.model_validate(body)
            except ValidationError as exc:
                raise CatalogueError(f"{path}: agent {agent_id!r}: {exc}") from None
        return cls(agents, overrides, labels)

    def get(self, agent_id: str) -> AgentConfig | None:
        return self._agents.get(agent_id)

    def publishable_overrides(self, agent_id: str) -> frozenset[str]:
        """The agentConfig fields (camelCase) a publishable key may set for this agent."""
        return self._publishable_overrides.get(agent_id, frozenset(DEFAULT_PUBLISHABLE_OVERRIDES))

    def ids(self) -> list[str]:
        return sorted(self._agents)

    def listing(self, agent_id: str) -> AgentListing:
        name, description = self._labels.get(agent_id, (agent_id, ""))
        language = self._agents[agent_id].language
        return AgentListing(id=agent_id, name=name, description=description, language=language)


def _labels(path: Path, agent_id: object, body: dict[str, Any]) -> tuple[str, str]:
    """`name` and `description` are for people choosing an agent, not part of its config."""
    name, description = body.pop("name", None) or str(agent_id), body.pop("description", "") or ""
    if not isinstance(name, str) or not isinstance(description, str):
        raise CatalogueError(f"{path}: agent {agent_id!r}: name and description must be text")
    return name, description


def _publishable_overrides(path: Path, agent_id: object, value: Any) -> frozenset[str]:
    if value is None:
        return frozenset(DEFAULT_PUBLISHABLE_OVERRIDES)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogueError(f"{path}: agent {agent_id!r}: publishableOverrides must be a list")
    unknown = sorted(set(value) - _OVERRIDABLE)
    if unknown:
        raise CatalogueError(
            f"{path}: agent {agent_id!r}: publishableOverrides names unknown fields {unknown}"
        )
    return frozenset(value)
