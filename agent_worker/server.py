"""The livekit-agents server: registered under one agent_name, so it takes explicit dispatches."""

from __future__ import annotations

import functools
from typing import Any

from livekit.agents import (
    NOT_GIVEN,
    AgentServer,
    JobContext,
    JobExecutorType,
    JobProcess,
    NotGivenOr,
)

from agent_worker.agent import prewarm, run_session
from agent_worker.capacity_report import CapacityReporter
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


class ReportingAgentServer(AgentServer):
    """An AgentServer that keeps the gateway told of its free capacity, and says it is draining
    before the drain starts (livekit-agents' CLI calls drain() on SIGTERM)."""

    def __init__(self, settings: WorkerSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.capacity = CapacityReporter(settings, self)
        self.on("worker_registered", self.capacity.registered)
        self._max_sessions = settings.max_sessions

    def _get_effective_load(self) -> float:
        """The load livekit-agents checks before it accepts a job: the live sessions plus the
        jobs accepted but not launched yet, counted in sessions like _session_load. Its own
        estimate counts a pending job on an idle worker as load_threshold / num_idle_processes,
        so a worker whose job processes are slow to start (a busy machine) reported itself full
        after one or two accepted jobs and LiveKit sent the next callers nowhere (found by
        `python -m bench.cluster`: one worker held 1 of 8 sessions)."""
        pending = len(self.active_jobs) + self._reserved_slots
        return SERVER_LOAD_CEILING * min(1.0, pending / self._max_sessions)

    async def drain(self, timeout: NotGivenOr[int | None] = NOT_GIVEN) -> None:  # noqa: ASYNC109
        await self.capacity.draining()
        await super().drain(timeout)

    async def aclose(self) -> None:
        await super().aclose()
        await self.capacity.aclose()


def build_server(settings: WorkerSettings) -> AgentServer:
    server = ReportingAgentServer(
        settings,
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
