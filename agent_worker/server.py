"""The livekit-agents server: registered under one agent_name, so it takes explicit dispatches."""

from __future__ import annotations

import functools

from livekit.agents import AgentServer, JobContext, JobExecutorType, JobProcess

from agent_worker.agent import prewarm, run_session
from agent_worker.config import WorkerSettings
from voice_common.log import configure_structlog

_EXECUTORS = {"process": JobExecutorType.PROCESS, "thread": JobExecutorType.THREAD}


# Module-level (not closures): job processes are started by a forkserver, which pickles these.
def _setup(settings: WorkerSettings, proc: JobProcess) -> None:
    configure_structlog(settings.log_level)
    prewarm(proc, settings)


async def _entrypoint(settings: WorkerSettings, ctx: JobContext) -> None:
    await run_session(ctx, settings)


# livekit-server offers jobs only to workers reporting a load under its target_load (0.7 by
# default), so a full worker (max_sessions live) reports exactly that, one session fewer less.
SERVER_LOAD_CEILING = 0.7


def _session_load(max_sessions: int, server: AgentServer) -> float:
    return SERVER_LOAD_CEILING * min(1.0, len(server.active_jobs) / max_sessions)


def build_server(settings: WorkerSettings) -> AgentServer:
    server = AgentServer(
        job_executor_type=_EXECUTORS[settings.job_executor],
        load_threshold=SERVER_LOAD_CEILING,
        load_fnc=functools.partial(_session_load, settings.max_sessions),
        drain_timeout=settings.drain_timeout_seconds,
        num_idle_processes=settings.num_idle_processes,
        ws_url=settings.livekit_url,
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret.get_secret_value(),
        host=settings.http_host,
        port=settings.http_port,
        setup_fnc=functools.partial(_setup, settings),
    )
    server.rtc_session(functools.partial(_entrypoint, settings), agent_name=settings.agent_name)
    return server
