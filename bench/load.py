"""A closed-loop load generator: `concurrency` callers, each sending its next request on an answer.

Bounded twice: a fixed number of requests and a time cap, whichever comes first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.stats import Summary, summarize

Call = Callable[[int], Awaitable[None]]


@dataclass
class LoadResult:
    target: str
    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    elapsed_s: float = 0.0

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def summary(self) -> Summary | None:
        return summarize(self.latencies_ms)

    def as_dict(self) -> dict[str, object]:
        s = self.summary
        return {
            "target": self.target,
            "concurrency": self.concurrency,
            "ok": self.ok,
            "errors": self.errors,
            "first_error": self.first_error,
            "elapsed_s": round(self.elapsed_s, 3),
            "throughput_rps": round(self.throughput, 1),
            "latency_ms": s.as_dict() if s else None,
        }


async def run_load(
    target: str,
    call: Call,
    *,
    concurrency: int,
    requests: int,
    time_cap_s: float,
    warmup: int = 0,
) -> LoadResult:
    """Warm-up calls (unrecorded, same concurrency) first, then `requests` timed calls."""
    if warmup:
        await _drive(call, concurrency=min(concurrency, warmup), count=warmup, offset=-warmup)
    result = LoadResult(target=target, concurrency=concurrency)
    deadline = time.monotonic() + time_cap_s
    started = time.monotonic()
    await _drive(call, concurrency=concurrency, count=requests, deadline=deadline, result=result)
    result.elapsed_s = time.monotonic() - started
    return result


async def _drive(
    call: Call,
    *,
    concurrency: int,
    count: int,
    offset: int = 0,
    deadline: float | None = None,
    result: LoadResult | None = None,
) -> None:
    next_index = 0

    async def caller() -> None:
        nonlocal next_index
        while next_index < count and (deadline is None or time.monotonic() < deadline):
            index = offset + next_index
            next_index += 1
            t0 = time.perf_counter()
            try:
                await call(index)
            except Exception as exc:  # a failed request is counted, not fatal
                if result is not None:
                    result.errors += 1
                    result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"
                continue
            if result is not None:
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(caller())
