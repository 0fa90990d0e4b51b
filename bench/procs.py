"""CPU and memory of a process tree (the worker, its job processes and their STT children)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import psutil  # type: ignore[import-untyped]

MB = 1024 * 1024


@dataclass(frozen=True)
class TreeMemory:
    processes: int
    rss_mb: float  # counts pages shared between forked processes once per process
    pss_mb: float  # shares them out: what the tree really costs the machine


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_memory(pid: int) -> TreeMemory:
    rss = pss = 0
    count = 0
    for proc in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            info = proc.memory_full_info()
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
            count += 1
    return TreeMemory(processes=count, rss_mb=rss / MB, pss_mb=pss / MB)


def _cpu_seconds(procs: list[psutil.Process]) -> dict[int, tuple[float, float]]:
    """pid -> (CPU seconds so far, creation time)."""
    out: dict[int, tuple[float, float]] = {}
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            t = proc.cpu_times()
            out[proc.pid] = (t.user + t.system, proc.create_time())
    return out


def _used_since(
    before: dict[int, tuple[float, float]], after: dict[int, tuple[float, float]], t0: float
) -> float:
    """CPU seconds spent between the readings. A process first seen at the end counts whole only
    if it was born inside the window; one the first listing missed would bring its past along."""
    used = 0.0
    for pid, (cpu, born) in after.items():
        if pid in before and before[pid][1] == born:
            used += cpu - before[pid][0]
        elif born >= t0:
            used += cpu
    return used


def _busy_pct(before: Any, after: Any) -> float:
    """Percent of all cores busy between two psutil.cpu_times() readings (a private counter,
    unlike psutil.cpu_percent(), so two windows can overlap)."""
    total = sum(after) - sum(before)
    idle = (after.idle - before.idle) + (
        getattr(after, "iowait", 0.0) - getattr(before, "iowait", 0.0)
    )
    return 100 * (total - idle) / total if total > 0 else 0.0


class CpuWindow:
    """CPU used by some process trees and by the whole machine between start() and stop().

    Trees are listed at both ends; a process is counted for the time it spent inside the window.
    """

    def __init__(self, pids: dict[str, int], *, solo: frozenset[str] = frozenset()) -> None:
        self._pids = pids
        self._solo = solo  # names measured without their children (the bench starts the stack)
        self._before: dict[str, dict[int, tuple[float, float]]] = {}
        self._t0 = 0.0
        self._t0_wall = 0.0
        self._machine0: Any = None

    def start(self) -> None:
        self._machine0 = psutil.cpu_times()
        # The clock starts before the listing and stops after the last one: on a busy machine a
        # listing can be descheduled for a while, and its span must count as window time.
        self._t0 = time.monotonic()
        self._t0_wall = time.time()
        self._before = {name: _cpu_seconds(self._procs(name)) for name in self._pids}

    def stop(self) -> dict[str, float]:
        """Percent of one core per tree; `machine`: percent of all cores; `others`: percent of one
        core used by processes outside the trees (other work on a shared machine)."""
        machine = _busy_pct(self._machine0, psutil.cpu_times())
        used = {
            name: _used_since(
                self._before.get(name, {}), _cpu_seconds(self._procs(name)), self._t0_wall
            )
            for name in self._pids
        }
        elapsed = time.monotonic() - self._t0
        out = {name: 100 * u / elapsed if elapsed > 0 else 0.0 for name, u in used.items()}
        cores = psutil.cpu_count() or 1
        out["others"] = max(0.0, machine * cores - sum(out.values()))
        out["machine"] = machine
        return out

    def _procs(self, name: str) -> list[psutil.Process]:
        pid = self._pids[name]
        if name in self._solo:
            try:
                return [psutil.Process(pid)]
            except psutil.NoSuchProcess:
                return []
        return tree(pid)


class LoadMonitor:
    """Samples, once a second, how much CPU processes outside the bench's own tree take.

    The bench owns every process it measures (the stack is its children); anything else running
    on the machine competes for the same cores, and the report says how much it took per phase.
    """

    def __init__(self, interval_s: float = 1.0) -> None:
        self._interval = interval_s
        self._samples: list[tuple[float, float, float]] = []  # (time, others %, machine %)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-load-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def between(self, t0: float, t1: float) -> dict[str, float] | None:
        """Mean percent of one core taken by other processes, and mean machine percent."""
        inside = [(o, m) for t, o, m in self._samples if t0 <= t <= t1]
        if not inside:
            return None
        return {
            "others_pct_of_one_core": sum(o for o, _ in inside) / len(inside),
            "machine_pct": sum(m for _, m in inside) / len(inside),
        }

    def _run(self) -> None:
        window = CpuWindow({"bench": os.getpid()})
        window.start()
        while not self._stop.wait(self._interval):
            out = window.stop()
            self._samples.append((time.monotonic(), out["others"], out["machine"]))
            window.start()
