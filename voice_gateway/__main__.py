"""`python -m voice_gateway`: serve the API with settings from the environment."""

from __future__ import annotations

from aiohttp import web

from voice_common.log import configure_logging, get_logger
from voice_gateway.app import create_app
from voice_gateway.config import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.log_level)
    get_logger("voice_gateway").info("gateway_starting", host=settings.host, port=settings.port)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        shutdown_timeout=5,
    )


if __name__ == "__main__":
    main()
