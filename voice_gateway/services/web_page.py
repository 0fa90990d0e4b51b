"""What the page the gateway serves is told: which publishable key it calls the API with."""

from __future__ import annotations

from dataclasses import dataclass

from voice_gateway.catalogue import AgentCatalogue
from voice_gateway.config import GatewaySettings
from voice_gateway.services.keys import KeyService


@dataclass(frozen=True, slots=True)
class WebPage:
    api_key: str | None  # None: none configured, or unusable (the page then says so)
    default_agent: str | None


async def prepare_web_page(
    settings: GatewaySettings, keys: KeyService, catalogue: AgentCatalogue
) -> WebPage:
    configured = settings.web_publishable_key
    default = settings.web_default_agent or next(iter(catalogue.ids()), None)
    if configured is None:
        return WebPage(api_key=None, default_agent=default)
    value = configured.get_secret_value()
    usable = await keys.ensure_web_key(
        value, agent_ids=catalogue.ids(), origins=settings.page_origins
    )
    return WebPage(api_key=value if usable else None, default_agent=default)
