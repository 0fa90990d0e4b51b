"""`python -m agent_worker start`: run the worker with livekit-agents' CLI (drains on SIGTERM)."""

from __future__ import annotations

from livekit.agents import cli

from agent_worker.config import WorkerSettings
from agent_worker.log import configure_logging
from agent_worker.server import build_server


def main() -> None:
    settings = WorkerSettings()
    configure_logging(settings.log_level)
    cli.run_app(build_server(settings))


if __name__ == "__main__":
    main()
