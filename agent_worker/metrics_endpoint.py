"""The worker's GET /metrics, served by the main process from a registry built at scrape time.

Sessions run in job processes, so their series reach the main process through prometheus-client's
multiprocess files (livekit-agents' own lk_agents_* series too: it honours the same directory).
livekit-agents' `prometheus_port` serves those files and nothing else in multiprocess mode, so the
worker serves its own registry instead: the merged files, the main process's process_* series, and
numbers read when scraped: live sessions (the server's running jobs) and the CPU and memory of the
whole process tree (main, forkserver, job processes).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator
from threading import Thread
from wsgiref.simple_server import WSGIServer

import psutil
from livekit.agents import AgentServer
from livekit.agents.job import RunningJobInfo
from prometheus_client import CollectorRegistry, ProcessCollector, multiprocess, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import ValidationError

from voice_common.agent_config import DispatchMetadata


class WorkerCollector(Collector):
    def __init__(self, server: AgentServer) -> None:
        self._server = server

    def collect(self) -> Iterator[Metric]:
        live = GaugeMetricFamily(
            "voicegw_worker_live_sessions",
            "Sessions running on this worker now, by agent.",
            labels=["agent"],
        )
        for agent, count in sorted(Tally(_agent_of(j.job.metadata) for j in self._jobs()).items()):
            live.add_metric([agent], count)
        yield live

        cpu, memory, processes = _process_tree()
        yield CounterMetricFamily(
            "voicegw_worker_cpu_seconds",
            "CPU time (user and system) of the worker's process tree: main, forkserver and job "
            "processes, running and finished.",
            value=cpu,
        )
        yield GaugeMetricFamily(
            "voicegw_worker_memory_bytes",
            "Memory of the worker's process tree now (proportional set size, so pages the "
            "processes share are counted once; resident size where PSS is not available).",
            value=memory,
        )
        yield GaugeMetricFamily(
            "voicegw_worker_processes",
            "Processes in the worker's process tree now (main, forkserver, job processes).",
            value=processes,
        )

    def _jobs(self) -> list[RunningJobInfo]:
        try:
            return list(self._server.active_jobs)
        except (AttributeError, RuntimeError):  # before the server ran, or while it closes
            return []


def _agent_of(metadata: str) -> str:
    try:
        return DispatchMetadata.model_validate_json(metadata).agent_id
    except ValidationError:
        return "unknown"


def _process_tree() -> tuple[float, float, int]:
    """CPU of finished processes is in their reaper's children_* times: the forkserver waits for
    the job processes it forks, so nothing is lost when a session's process exits."""
    me = psutil.Process()
    cpu = memory = 0.0
    count = 0
    for proc in [me, *me.children(recursive=True)]:
        try:
            with proc.oneshot():
                t = proc.cpu_times()
                cpu += t.user + t.system + t.children_user + t.children_system
                memory += _memory(proc)
            count += 1
        except psutil.Error:  # exited between the listing and the read
            continue
    return cpu, memory, count


def _memory(proc: psutil.Process) -> float:
    try:
        return float(proc.memory_full_info().pss)
    except (psutil.AccessDenied, AttributeError):
        return float(proc.memory_info().rss)


def start_metrics_server(server: AgentServer, host: str, port: int) -> tuple[WSGIServer, Thread]:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    ProcessCollector(registry=registry)
    registry.register(WorkerCollector(server))
    return start_http_server(port, addr=host, registry=registry)
