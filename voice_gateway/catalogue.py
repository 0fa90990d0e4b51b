"""The agent catalogue: which agents exist and their base config, validated whole at start."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from agent_worker.agent_config import AgentConfig

AGENT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class CatalogueError(Exception):
    pass


class AgentCatalogue:
    def __init__(self, agents: dict[str, AgentConfig]) -> None:
        self._agents = agents

    @classmethod
    def load(cls, path: Path) -> AgentCatalogue:
        raw: Any = yaml.safe_load(path.read_text())
        if not isinstance(raw, dict) or not isinstance(raw.get("agents"), dict):
            raise CatalogueError(f"{path}: expected a mapping with an 'agents' mapping")
        agents: dict[str, AgentConfig] = {}
        for agent_id, body in raw["agents"].items():
            if not AGENT_ID_RE.match(str(agent_id)):
                raise CatalogueError(f"{path}: invalid agent id {agent_id!r}")
            try:
                agents[str(agent_id)] = AgentConfig.model_validate(body or {})
            except ValidationError as exc:
                raise CatalogueError(f"{path}: agent {agent_id!r}: {exc}") from None
        return cls(agents)

    def get(self, agent_id: str) -> AgentConfig | None:
        return self._agents.get(agent_id)

    def ids(self) -> list[str]:
        return sorted(self._agents)
