"""The worker's load as livekit-server reads it: full at max_sessions, open one session below."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from agent_worker.config import WorkerSettings
from agent_worker.server import SERVER_LOAD_CEILING, _session_load, build_server

pytestmark = pytest.mark.unit


def server_with(jobs: int) -> Any:
    return SimpleNamespace(active_jobs=[object()] * jobs)


def test_a_worker_takes_jobs_until_max_sessions_and_then_reports_full() -> None:
    loads = [_session_load(4, server_with(n)) for n in range(6)]
    assert all(load < SERVER_LOAD_CEILING for load in loads[:4])
    assert loads[4] == loads[5] == SERVER_LOAD_CEILING
    assert loads == sorted(loads)


def test_jobs_accepted_but_not_launched_count_as_sessions_not_as_a_full_worker() -> None:
    """A busy machine starts job processes slowly; meanwhile the worker must go on accepting
    jobs up to max_sessions, not report itself full after the first one."""
    server: Any = build_server(WorkerSettings(max_sessions=4, num_idle_processes=1))
    server._proc_pool = SimpleNamespace(processes=[])  # set up by run(): no job launched yet
    server._reserved_slots = 3  # accepted, processes still starting
    assert server._get_effective_load() < SERVER_LOAD_CEILING
    server._reserved_slots = 4
    assert server._get_effective_load() == SERVER_LOAD_CEILING
