"""`make chaos` counts from what callers saw: the time a caller sat in its room without an agent."""

from __future__ import annotations

import argparse

import pytest

from devstack.chaos import Call, Chaos, Kill, _node_id

pytestmark = pytest.mark.unit


def call(joined: float, left: float, agents: list[tuple[float, int]]) -> Call:
    c = Call("ses_1", "room", started=joined - 1, joined=joined, left=left, agents=agents)
    return c


def test_time_without_agent_counts_only_gaps_inside_the_window() -> None:
    # joined at 10 alone, agent at 14, agent lost at 20 (kill), back at 27, caller left at 40
    c = call(10, 40, [(10, 0), (14, 1), (20, 0), (27, 1)])
    assert c.without_agent(0, 100) == pytest.approx(4 + 7)
    assert c.without_agent(20, 45) == pytest.approx(7)
    assert c.without_agent(30, 45) == 0


def test_a_caller_never_served_is_without_agent_until_it_leaves() -> None:
    c = call(10, 25, [(10, 0)])
    assert c.without_agent(20, 60) == pytest.approx(5)


def test_p95_after_a_kill_takes_the_callers_live_in_its_window() -> None:
    chaos = Chaos(argparse.Namespace(gap=20, down=5))
    kill = Kill("worker0:SIGKILL", at=100, wall="13:00:00")
    chaos.calls = [
        call(90, 140, [(90, 1), (100, 0), (112, 1)]),  # 12 s without agent after the kill
        call(95, 130, [(95, 1)]),  # never lost its agent
        call(10, 50, [(10, 0)]),  # over before the kill: not counted
    ]
    assert chaos._p95_after(kill) == 12.0


def test_node_id_is_read_from_the_startup_line() -> None:
    log = (
        '{"msg":"other","nodeID":"ND_other"}\n'
        '{"msg":"starting LiveKit server","portHttp":1,"nodeID":"ND_mine","nodeIP":"127.0.0.1"}\n'
    )
    assert _node_id(log) == "ND_mine"
