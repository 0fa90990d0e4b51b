"""`python -m agent_worker start`: run the worker with livekit-agents' CLI (drains on SIGTERM).

livekit-agents and everything that imports prometheus_client are imported only once the metrics
directory is exported: prometheus_client picks its value store when it is first imported, in this
process and in the forkserver that starts the job processes."""

from __future__ import annotations

from agent_worker.config import WorkerSettings
from agent_worker.multiproc import prepare_multiprocess_dir, remove_multiprocess_dir
from voice_common.log import configure_structlog, get_logger


def main() -> None:
    settings = WorkerSettings()
    configure_structlog(settings.log_level)
    metrics_on = settings.metrics_port is not None
    metrics_dir, owned = prepare_multiprocess_dir(settings.metrics_dir) if metrics_on else (None, 0)
    from livekit.agents import cli

    from agent_worker.metrics_endpoint import start_metrics_server
    from agent_worker.server import build_server

    server = build_server(settings)
    http = None
    if settings.metrics_port is not None:
        http, _thread = start_metrics_server(server, settings.metrics_host, settings.metrics_port)
        get_logger("agent_worker").info(
            "metrics_listening", host=settings.metrics_host, port=http.server_port
        )
    try:
        cli.run_app(server)
    finally:
        if http is not None:
            http.shutdown()
            http.server_close()
        if metrics_dir is not None and owned:
            remove_multiprocess_dir(metrics_dir)


if __name__ == "__main__":
    main()
