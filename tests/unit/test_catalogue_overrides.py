"""publishableOverrides: per agent in the catalogue, kept out of the config the worker receives."""

from __future__ import annotations

from pathlib import Path

import pytest

from voice_gateway.catalogue import DEFAULT_PUBLISHABLE_OVERRIDES, AgentCatalogue, CatalogueError
from voice_gateway.config import DEFAULT_CATALOGUE

pytestmark = pytest.mark.unit


def load(tmp_path: Path, text: str) -> AgentCatalogue:
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    return AgentCatalogue.load(path)


def test_the_default_is_greeting_language_voice() -> None:
    catalogue = AgentCatalogue.load(DEFAULT_CATALOGUE)
    assert catalogue.publishable_overrides("demo") == frozenset(DEFAULT_PUBLISHABLE_OVERRIDES)
    assert "instructions" not in catalogue.publishable_overrides("demo")


def test_an_agent_may_list_its_own(tmp_path: Path) -> None:
    catalogue = load(
        tmp_path,
        "agents:\n  kiosk:\n    greeting: hi\n    publishableOverrides: [instructions, greeting]\n",
    )
    assert catalogue.publishable_overrides("kiosk") == {"instructions", "greeting"}
    config = catalogue.get("kiosk")
    assert config is not None and "publishableOverrides" not in config.model_dump(by_alias=True)


@pytest.mark.parametrize("value", ["[temperature]", "greeting", "[1]"])
def test_an_unknown_or_malformed_list_fails_the_load(tmp_path: Path, value: str) -> None:
    with pytest.raises(CatalogueError, match="publishableOverrides"):
        load(tmp_path, f"agents:\n  kiosk:\n    publishableOverrides: {value}\n")
