"""The livekit-agents server: registered under one agent_name, so it takes explicit dispatches."""

from __future__ import annotations

from livekit.agents import AgentServer, JobContext, JobExecutorType, JobProcess

from agent_worker.agent import prewarm, run_session
from agent_worker.config import WorkerSettings
from agent_worker.log import configure_logging


def build_server(settings: WorkerSettings) -> AgentServer:
    def setup(proc: JobProcess) -> None:
        configure_logging(settings.log_level)
        prewarm(proc)

    server = AgentServer(
        job_executor_type=(
            JobExecutorType.PROCESS
            if settings.job_executor == "process"
            else JobExecutorType.THREAD
        ),
        load_threshold=settings.load_threshold,
        drain_timeout=settings.drain_timeout_seconds,
        num_idle_processes=settings.num_idle_processes,
        ws_url=settings.livekit_url,
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret.get_secret_value(),
        host=settings.http_host,
        port=settings.http_port,
        setup_fnc=setup,
    )

    async def entrypoint(ctx: JobContext) -> None:
        await run_session(ctx, settings)

    server.rtc_session(entrypoint, agent_name=settings.agent_name)
    return server
