"""The worker's load as livekit-server reads it: full at max_sessions, open one session below."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from agent_worker.server import SERVER_LOAD_CEILING, _session_load

pytestmark = pytest.mark.unit


def server_with(jobs: int) -> Any:
    return SimpleNamespace(active_jobs=[object()] * jobs)


def test_a_worker_takes_jobs_until_max_sessions_and_then_reports_full() -> None:
    loads = [_session_load(4, server_with(n)) for n in range(6)]
    assert all(load < SERVER_LOAD_CEILING for load in loads[:4])
    assert loads[4] == loads[5] == SERVER_LOAD_CEILING
    assert loads == sorted(loads)
