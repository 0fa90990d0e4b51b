"""`python -m bench [--quick]`: every measure, one table at the end, results in bench/results/."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from livekit.rtc.data_stream import StreamError

from bench.accuracy import measure_accuracy
from bench.audio_parts import measure_audio_parts
from bench.density import run_density, worker_env
from bench.gateway_api import GatewayApi
from bench.idle_cpu import BEFORE_ENV, run_idle_breakdown
from bench.machine import machine_info
from bench.procs import LoadMonitor
from bench.report import Results, render, summary_json
from bench.sessions import (
    SessionsResult,
    make_question_wav,
    run_greeting_sessions,
    run_voice_sessions,
)
from bench.start_load import measure_start
from devstack.stack import Stack

RESULTS = Path(__file__).resolve().parent / "results"
PHASES = ("start", "accuracy", "sessions", "idle", "density")


@dataclass(frozen=True)
class Plan:
    start_levels: tuple[int, ...] = (1, 16, 64)
    start_requests: int = 200
    start_cap_s: float = 30.0
    greeting_sessions: int = 40  # every other one a waitForAgent start
    greeting_gap_s: float = 1.0
    no_worker_requests: int = 100
    voice_sessions: int = 10
    sessions_cap_s: float = 320.0
    density_steps: tuple[int, ...] = (1, 2, 4, 8, 12, 16, 20, 24, 28, 32)
    density_window_s: float = 5.0
    density_settle_s: float = 3.0
    density_stagger_s: float = 1.0
    density_wait_s: float = 8.0  # for the agent, then for the greeting, per session
    density_cap_s: float = 240.0
    executors: tuple[str, ...] = ("process", "thread")
    idle_sessions: int = 4
    idle_rounds: int = 2
    idle_window_s: float = 6.0
    accuracy_full: bool = True  # the whole spoken set (quick: the CI sample)


QUICK = Plan(
    start_requests=160,  # at c=16, ten waves: a ratio of fewer was mostly noise
    start_cap_s=5.0,
    greeting_sessions=8,
    greeting_gap_s=0.3,
    no_worker_requests=30,
    voice_sessions=3,
    sessions_cap_s=60.0,
    density_steps=(1, 4, 8),
    density_window_s=2.0,
    density_settle_s=3.0,
    density_stagger_s=0.75,
    density_wait_s=6.0,
    density_cap_s=40.0,
    idle_sessions=3,
    idle_rounds=2,
    idle_window_s=6.0,
    accuracy_full=False,
)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer samples, under 3 minutes")
    parser.add_argument("--only", choices=PHASES, action="append", help="run only these phases")
    parser.add_argument("--keep-logs", action="store_true", help="keep the stack logs")
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    phases = tuple(args.only or PHASES)
    log_dir = Path(tempfile.mkdtemp(prefix="voicegw-bench-"))
    results = Results(
        mode="quick" if args.quick else "full",
        machine=machine_info(),
        started_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    t0 = time.monotonic()
    monitor = LoadMonitor()
    monitor.start()
    try:
        asyncio.run(_run(plan, phases, results, log_dir, monitor))
    finally:
        monitor.stop()
        results.wall_s = time.monotonic() - t0
        text = render(results)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "latest.md").write_text(text)
        (RESULTS / "latest.json").write_text(json.dumps(_as_json(results, plan), indent=2) + "\n")
        print(text)
        print(f"written to {RESULTS / 'latest.md'} and latest.json", file=sys.stderr)
        if args.keep_logs:
            print(f"stack logs kept in {log_dir}", file=sys.stderr)
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
    return 0


async def _run(
    plan: Plan, phases: tuple[str, ...], results: Results, log_dir: Path, monitor: LoadMonitor
) -> None:
    asyncio.get_running_loop().set_exception_handler(_quiet_hangups)

    def phase_done(name: str, since: float) -> None:
        results.contention[name] = monitor.between(since, time.monotonic())

    if "start" in phases:
        _say("/start load: ceiling, floor and gateway")
        t = time.monotonic()
        start_dir = log_dir / "start"
        start_dir.mkdir()
        results.start, results.no_worker = await measure_start(
            levels=list(plan.start_levels),
            requests=plan.start_requests,
            time_cap_s=plan.start_cap_s,
            log_dir=start_dir,
            refusals=plan.no_worker_requests,
        )
        phase_done("/start load", t)
    if "accuracy" in phases:
        _say("spoken questions: the demo agent's answers, offline")
        t = time.monotonic()
        results.accuracy = await measure_accuracy(log_dir / "accuracy", full=plan.accuracy_full)
        phase_done("spoken-question accuracy", t)
    if not {"sessions", "idle", "density"} & set(phases):
        return
    stack_dir = log_dir / "stack"
    stack_dir.mkdir()
    # The worker starts as the first density run wants it (more warm job processes, a session cap
    # above the ramp), so that run needs no restart; neither setting changes one session's path.
    stack = Stack(
        api_key=f"vgw_sk_{secrets.token_urlsafe(32)}",
        log_dir=stack_dir,
        extra_worker_env=worker_env(plan.executors[0], list(plan.density_steps)),
        phone=False,  # no SIP service or Redis: their idle CPU is not a session's
    )
    try:
        _say("starting LiveKit, the gateway and a worker")
        await asyncio.to_thread(stack.start)
        if "sessions" in phases:
            t = time.monotonic()
            results.sessions = await _sessions(plan, stack, log_dir)
            phase_done("session latencies", t)
        if "idle" in phases:
            t = time.monotonic()
            _say("audio parts of a silent session, in process CPU time")
            results.audio_parts = await measure_audio_parts(rounds=plan.idle_rounds + 2)
            base = worker_env(plan.executors[0], list(plan.density_steps))
            for label, extra in (("before", BEFORE_ENV), ("after", {})):
                _say(f"idle-listening CPU by part, {label}: {plan.idle_sessions} sessions/variant")
                results.idle.append(
                    await run_idle_breakdown(
                        stack,
                        label=label,
                        env={**base, **extra},
                        sessions=plan.idle_sessions,
                        rounds=plan.idle_rounds,
                        window_s=plan.idle_window_s,
                        settle_s=plan.density_settle_s,
                        wait_s=plan.density_wait_s,
                        profile=label == "after",
                    )
                )
            phase_done("idle CPU by part", t)
        if "density" in phases:
            for executor in plan.executors:
                _say(f"density: {executor} executor")
                t = time.monotonic()
                results.density.append(
                    await run_density(
                        stack,
                        executor=executor,
                        steps=list(plan.density_steps),
                        window_s=plan.density_window_s,
                        settle_s=plan.density_settle_s,
                        stagger_s=plan.density_stagger_s,
                        wait_s=plan.density_wait_s,
                        time_cap_s=plan.density_cap_s,
                    )
                )
                phase_done(f"density, {executor} executor", t)
    finally:
        await asyncio.to_thread(stack.stop)


async def _sessions(plan: Plan, stack: Stack, log_dir: Path) -> SessionsResult:
    api = GatewayApi(stack.gateway_url, stack.api_key)
    result = SessionsResult()
    try:
        # One unrecorded session: the first job pays for imports the others do not.
        await run_greeting_sessions(api, 1, gap_s=plan.greeting_gap_s, time_cap_s=30)
        _say(
            f"agent ready and greeting: {plan.greeting_sessions} sessions, every other one "
            "with waitForAgent"
        )
        result.sessions = await run_greeting_sessions(
            api,
            plan.greeting_sessions,
            gap_s=plan.greeting_gap_s,
            time_cap_s=plan.sessions_cap_s / 2,
        )
        _say(f"voice-to-voice: {plan.voice_sessions} sessions")
        wav = await asyncio.to_thread(make_question_wav, log_dir)
        result.voice = await run_voice_sessions(
            api,
            plan.voice_sessions,
            wav,
            stack.workers[0].log_path,
            time_cap_s=plan.sessions_cap_s / 2,
        )
    finally:
        await api.aclose()
    return result


def _as_json(results: Results, plan: Plan) -> dict[str, Any]:
    return {
        "summary": summary_json(results),
        "mode": results.mode,
        "started_at": results.started_at,
        "wall_s": round(results.wall_s, 1),
        "machine": results.machine,
        "plan": dataclasses.asdict(plan),
        "start": [lv.as_dict() for lv in results.start],
        "no_worker": results.no_worker.as_dict() if results.no_worker else None,
        "sessions": results.sessions.as_dict() if results.sessions else None,
        "idle_cpu": [run.as_dict() for run in results.idle],
        "audio_parts": results.audio_parts.as_dict() if results.audio_parts else None,
        "density": [run.as_dict() for run in results.density],
        "accuracy": [r.as_dict() for r in results.accuracy.runs] if results.accuracy else None,
        "contention": results.contention,
    }


def _quiet_hangups(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A voice session hangs up while the answer's caption is still streaming; the client's
    caption reader then ends with StreamError, which is expected here and not worth a traceback."""
    if isinstance(context.get("exception"), StreamError):
        return
    loop.default_exception_handler(context)


_T0 = time.monotonic()


def _say(text: str) -> None:
    print(f"bench [{time.monotonic() - _T0:5.0f} s]: {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
