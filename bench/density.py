"""Measure 5: how many live sessions one worker holds, and what each costs in CPU and memory.

The ramp adds sessions step by step (each a Listener that joined, heard the greeting and stays,
microphone open), records agent-ready for the sessions added at each step, then samples CPU and
memory over a steady window. It stops at the first step whose agent-ready p95 passes the limit,
whose machine CPU saturates, where a session fails, or at the last step.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench.gateway_api import GatewayApi
from bench.listener import Listener
from bench.procs import CpuWindow, TreeMemory, tree, tree_memory
from bench.stats import percentile
from devstack.stack import Stack

READY_LIMIT_MS = 2000.0
SATURATED_PCT = 90.0  # of all cores, used by the stack and its callers (the bench)
# livekit-server routes a job only to a worker whose reported load is under its target_load, 0.7
# (agentservice.go JobRequestAffinity), and the worker reports live sessions / max_sessions.
LIVEKIT_TARGET_LOAD = 0.7
STACK = ("worker", "livekit", "gateway", "bench")


@dataclass
class Step:
    sessions: int
    added: int
    agent_ready_ms: list[float] = field(default_factory=list)
    greeting_ms: list[float] = field(default_factory=list)
    failures: int = 0
    first_failure: str | None = None
    cpu_pct: dict[str, float] = field(default_factory=dict)
    memory: TreeMemory | None = None
    stop_reason: str | None = None

    @property
    def ready_p95(self) -> float | None:
        return percentile(self.agent_ready_ms, 95) if self.agent_ready_ms else None

    @property
    def ready_p50(self) -> float | None:
        return percentile(self.agent_ready_ms, 50) if self.agent_ready_ms else None


@dataclass
class DensityRun:
    executor: str
    baseline: TreeMemory | None = None
    baseline_cpu_pct: float | None = None
    steps: list[Step] = field(default_factory=list)
    worker_env: dict[str, str] = field(default_factory=dict)

    @property
    def held(self) -> Step | None:
        """The largest step that met every limit."""
        ok = [s for s in self.steps if s.stop_reason is None]
        return ok[-1] if ok else None

    def per_session_mb(self, step: Step | None = None) -> tuple[float, float] | None:
        """(PSS, RSS) MB per session above the idle worker (its idle job processes included)."""
        step = step or self.held
        if step is None or step.memory is None or self.baseline is None:
            return None
        return (
            (step.memory.pss_mb - self.baseline.pss_mb) / step.sessions,
            (step.memory.rss_mb - self.baseline.rss_mb) / step.sessions,
        )

    def cpu_per_session(self, step: Step | None = None) -> float | None:
        """Percent of one core the worker spends per live session, above its idle use."""
        step = step or self.held
        if step is None or "worker" not in step.cpu_pct:
            return None
        return (step.cpu_pct["worker"] - (self.baseline_cpu_pct or 0.0)) / step.sessions

    def cpu_bound_estimate(self) -> float | None:
        """Sessions a worker alone on this machine would hold at SATURATED_PCT of its cores, from
        the cost per session at the largest step measured (LiveKit and callers elsewhere)."""
        measured = [s for s in self.steps if "worker" in s.cpu_pct]
        per = self.cpu_per_session(measured[-1]) if measured else None
        if per is None or per <= 0:
            return None
        cores = psutil.cpu_count() or 1
        return (cores * SATURATED_PCT - (self.baseline_cpu_pct or 0.0)) / per

    def as_dict(self) -> dict[str, Any]:
        held = self.held
        return {
            "executor": self.executor,
            "worker_env": self.worker_env,
            "baseline": asdict(self.baseline) if self.baseline else None,
            "baseline_worker_cpu_pct": self.baseline_cpu_pct,
            "held_sessions": held.sessions if held else 0,
            "per_session_mb_pss_rss": self.per_session_mb(),
            "cpu_pct_per_session": self.cpu_per_session(),
            "cpu_bound_estimate_sessions": self.cpu_bound_estimate(),
            "steps": [
                {
                    **asdict(s),
                    "ready_p50_ms": s.ready_p50,
                    "ready_p95_ms": s.ready_p95,
                }
                for s in self.steps
            ],
        }


@dataclass
class Live:
    room: str
    listener: Listener


def worker_env(executor: str, steps: list[int]) -> dict[str, str]:
    return {
        "AGENT_WORKER_JOB_EXECUTOR": executor,
        # high enough that the ramp's last step stays under livekit-server's target load
        "AGENT_WORKER_MAX_SESSIONS": str(math.ceil(max(steps) / LIVEKIT_TARGET_LOAD) + 2),
        # enough warm job processes that sessions arriving a second apart need not wait for one
        "AGENT_WORKER_NUM_IDLE_PROCESSES": "4",
    }


async def run_density(
    stack: Stack,
    *,
    executor: str,
    steps: list[int],
    window_s: float,
    settle_s: float,
    stagger_s: float,
    wait_s: float,
    time_cap_s: float,
) -> DensityRun:
    """Ramps on a worker running `executor` (restarting the stack's worker unless it already runs
    with that env), then ends every session it started."""
    env = worker_env(executor, steps)
    worker = stack.workers[-1] if stack.workers else None
    if worker is None or worker.proc.poll() is not None or stack.extra_worker_env != env:
        t0 = time.monotonic()
        for old in stack.workers:
            await asyncio.to_thread(old.stop, 5)
        t1 = time.monotonic()
        stack.extra_worker_env = env
        worker = await asyncio.to_thread(stack.start_worker)
        print(
            f"  density[{executor}] worker restarted: stop {t1 - t0:.1f} s, "
            f"start {time.monotonic() - t1:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    run = DensityRun(executor=executor, worker_env=env)
    pids = {"worker": worker.proc.pid, "bench": os.getpid()}
    if stack.gateway is not None:
        pids["gateway"] = stack.gateway.proc.pid
    if stack.livekit._proc is not None:  # noqa: SLF001 - the pid is only for psutil
        pids["livekit"] = stack.livekit._proc.pid  # noqa: SLF001
    await asyncio.sleep(3)  # the idle job processes finish warming up
    window = CpuWindow(pids, solo=frozenset({"bench"}))
    window.start()
    await asyncio.sleep(window_s)
    run.baseline_cpu_pct = window.stop()["worker"]
    run.baseline = tree_memory(worker.proc.pid)

    api = GatewayApi(stack.gateway_url, stack.api_key)
    live: list[Live] = []
    deadline = time.monotonic() + time_cap_s
    try:
        for target in steps:
            if time.monotonic() > deadline:
                break
            step = await _grow(api, live, target, stagger_s, wait_s)
            run.steps.append(step)
            # The pool replaces the job processes just taken; their warm-up is a cost of starting
            # sessions, not of holding them, so the window opens once the youngest is settled.
            await _wait_settled(worker.proc.pid, settle_s, cap_s=4 * settle_s + 5)
            window.start()
            await asyncio.sleep(window_s)
            step.cpu_pct = window.stop()
            step.memory = tree_memory(worker.proc.pid)
            step.stop_reason = _verdict(step)
            _progress(executor, step)
            if step.stop_reason is not None:
                break
    finally:
        t_end = time.monotonic()
        await _end_all(api, live)
        await api.aclose()
        print(
            f"  density[{executor}] sessions ended in {time.monotonic() - t_end:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    return run


async def _wait_settled(pid: int, min_age_s: float, *, cap_s: float) -> None:
    deadline = time.monotonic() + cap_s
    while time.monotonic() < deadline:
        born = []
        for proc in tree(pid):
            with contextlib.suppress(psutil.NoSuchProcess):
                born.append(proc.create_time())
        if not born or time.time() - max(born) >= min_age_s:
            return
        await asyncio.sleep(0.5)


async def _grow(
    api: GatewayApi, live: list[Live], target: int, stagger_s: float, wait_s: float
) -> Step:
    step = Step(sessions=target, added=target - len(live))

    async def one(i: int) -> None:
        await asyncio.sleep(i * stagger_s)

        def failed(what: str) -> None:
            step.failures += 1
            step.first_failure = step.first_failure or what

        try:
            started = await api.start(agentId="demo", userIdentity=f"bench-dense-{target}-{i}")
        except Exception as exc:
            failed(f"/start: {type(exc).__name__}")
            return
        listener = Listener()
        live.append(Live(started.room_name, listener))
        try:
            await listener.join(started.livekit_url, started.user_token)
        except Exception as exc:
            failed(f"join: {type(exc).__name__}")
            return
        try:
            await asyncio.wait_for(listener.agent.wait(), wait_s)
        except TimeoutError:
            failed(f"no agent within {wait_s:.0f} s")
            return
        joined = listener.agent_joined_wall()
        assert listener.agent_seen_at is not None
        step.agent_ready_ms.append(
            (joined - started.answered_wall) * 1000
            if joined
            else (listener.agent_seen_at - started.answered_mono) * 1000
        )
        try:
            await asyncio.wait_for(listener.greeting.wait(), wait_s)
        except TimeoutError:
            failed(f"no greeting within {wait_s:.0f} s of the agent")
            return
        assert listener.greeting_at is not None
        step.greeting_ms.append((listener.greeting_at - listener.connected_at) * 1000)

    async with asyncio.TaskGroup() as group:
        for i in range(step.added):
            group.create_task(one(i))
    return step


def _verdict(step: Step) -> str | None:
    if step.failures:
        return f"{step.failures} of {step.added} new session(s) failed ({step.first_failure})"
    p95 = step.ready_p95
    if p95 is not None and p95 > READY_LIMIT_MS:
        return f"agent-ready p95 {p95:.0f} ms > {READY_LIMIT_MS:.0f} ms"
    ours = stack_cpu_pct(step.cpu_pct)
    if ours >= SATURATED_PCT:
        return f"the stack used {ours:.0f}% of the CPUs (>= {SATURATED_PCT:.0f}%)"
    return None


def stack_cpu_pct(cpu_pct: dict[str, float]) -> float:
    """Percent of all cores used by the stack and the bench's callers."""
    cores = psutil.cpu_count() or 1
    return sum(cpu_pct.get(name, 0.0) for name in STACK) / cores


async def _end_all(api: GatewayApi, live: list[Live]) -> None:
    sem = asyncio.Semaphore(4)

    async def end(s: Live) -> None:
        async with sem:
            with contextlib.suppress(Exception):
                await s.listener.leave()
            with contextlib.suppress(Exception):
                await api.end(s.room)

    await asyncio.gather(*(end(s) for s in live))
    live.clear()


def _progress(executor: str, step: Step) -> None:
    mem = step.memory
    print(
        f"  density[{executor}] {step.sessions} sessions: ready p95 "
        f"{step.ready_p95 or float('nan'):.0f} ms, worker CPU {step.cpu_pct.get('worker', 0):.0f}%,"
        f" machine {step.cpu_pct.get('machine', 0):.0f}%, PSS {mem.pss_mb if mem else 0:.0f} MB"
        + (f" -> stop: {step.stop_reason}" if step.stop_reason else ""),
        file=sys.stderr,
        flush=True,
    )
