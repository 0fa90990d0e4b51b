"""`python -m agent_worker start`: run the worker with livekit-agents' CLI (drains on SIGTERM)."""

from __future__ import annotations

from livekit.agents import cli

from agent_worker.config import WorkerSettings
from agent_worker.server import build_server
from voice_common.log import configure_structlog


def main() -> None:
    settings = WorkerSettings()
    configure_structlog(settings.log_level)
    cli.run_app(build_server(settings))


if __name__ == "__main__":
    main()
