"""Issue 13, measure 1: where an idle-listening session's CPU goes, by switching its parts off.

One worker, the same number of live sessions in each variant, each variant measured twice in
alternation (full, no ambience, microphone closed, bare, then again) so the machine's drift
touches them alike. A session is "idle listening" as in the density ramp: the caller joined,
heard the greeting, stays subscribed with its microphone open and sends silence at real time.

- full: as a caller meets it (background ambience on, microphone open);
- no ambience: agentConfig backgroundAudio.enabled = false (no `background_audio` track);
- microphone closed: the caller publishes no audio (nothing to receive, decode, VAD or recognise);
- bare: both off (what is left: the agent's voice track and the session's own loop).

The parts are differences of the worker's CPU per session (above the idle worker):
caller audio = full - microphone closed; ambience = full - no ambience; agent voice track and
session overhead = bare; the rest (what the parts cost together beyond their sum) = full - those.
With `profile`, py-spy also samples the worker's Python threads during the full variant and
splits them by what they run (VAD, recogniser, ambience, audio I/O, event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.density import Live, _end_all, _wait_settled
from bench.gateway_api import GatewayApi
from bench.listener import Listener
from bench.procs import CpuWindow
from devstack.stack import Stack

RAW_PROFILE = Path(__file__).resolve().parent / "results" / "idle-profile.txt"
NO_AMBIENCE = {"backgroundAudio": {"enabled": False}}


@dataclass(frozen=True)
class Variant:
    name: str
    microphone: bool
    ambience: bool


VARIANTS = (
    Variant("full", microphone=True, ambience=True),
    Variant("no ambience", microphone=True, ambience=False),
    Variant("microphone closed", microphone=False, ambience=True),
    Variant("bare", microphone=False, ambience=False),
)

# py-spy frames -> the part they belong to (first match wins; file or function substrings).
PROFILE_PARTS = (
    (
        "job-process warm-up (imports, model load: the pool refilling, not a session)",
        ("_create_inference_session", "exec_module", "_find_and_load", "forkserver"),
    ),
    ("quiet gate (level of each caller frame)", ("quiet_gate",)),
    ("VAD (silero, onnxruntime)", ("silero", "onnx", "vad.py")),
    ("recogniser (STT stream adapter, PocketSphinx)", ("stt", "sphinx", "stream_adapter")),
    ("ambience (decode, mix, gain)", ("background_audio", "codecs", "mixer", "audio_frames_from")),
    ("caller audio in (audio stream, resample)", ("audio_stream", "resampler", "room_io/_input")),
    ("agent voice out (audio source, output)", ("audio_source", "_output", "transcription")),
)


# The worker as it was before issue 13's cuts, measured in the same run for the before/after.
BEFORE_ENV = {"AGENT_WORKER_SHARED_AMBIENCE": "false", "AGENT_WORKER_QUIET_GATE": "false"}
IDLE_FILTER = (
    "select",
    "wait",
    "acquire",
    "sleep",
    "_watchdog_main",
    "poll",
    "_forward_logs",
    "recv",
    "accept",
    "get (queue.py",
)


@dataclass
class IdleBreakdown:
    sessions: int
    window_s: float
    label: str = ""
    worker_env: dict[str, str] = field(default_factory=dict)
    baseline_cpu_pct: float | None = None
    # variant -> worker CPU % per session above idle, one value per round
    per_session: dict[str, list[float]] = field(default_factory=dict)
    failures: int = 0
    profile: dict[str, float] = field(default_factory=dict)  # part -> % of busy Python samples
    profile_note: str = ""

    def mean(self, variant: str) -> float | None:
        values = self.per_session.get(variant)
        return sum(values) / len(values) if values else None

    def parts(self) -> list[tuple[str, float | None]]:
        full, no_amb = self.mean("full"), self.mean("no ambience")
        closed, bare = self.mean("microphone closed"), self.mean("bare")

        def diff(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else a - b

        caller, ambience = diff(full, closed), diff(full, no_amb)
        rest = None
        if None not in (full, caller, ambience, bare):
            rest = full - caller - ambience - bare  # type: ignore[operator]
        return [
            ("caller audio in: receive, Opus decode, resample, VAD, recogniser", caller),
            ("background ambience: decode, mix, Opus encode, send", ambience),
            ("agent voice track and the session's own loop (bare session)", bare),
            ("interaction of the parts (full - the three above)", rest),
            ("total: one idle-listening session", full),
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "worker_env": self.worker_env,
            "sessions": self.sessions,
            "window_s": self.window_s,
            "baseline_worker_cpu_pct": self.baseline_cpu_pct,
            "per_session_cpu_pct": self.per_session,
            "parts_pct_of_one_core": dict(self.parts()),
            "failures": self.failures,
            "profile_share_of_python_samples_pct": self.profile,
            "profile_note": self.profile_note,
        }


async def run_idle_breakdown(
    stack: Stack,
    *,
    label: str,
    env: dict[str, str],
    sessions: int,
    rounds: int,
    window_s: float,
    settle_s: float,
    wait_s: float,
    profile: bool,
) -> IdleBreakdown:
    worker = stack.workers[-1] if stack.workers else None
    if worker is None or worker.proc.poll() is not None or stack.extra_worker_env != env:
        for old in stack.workers:
            await asyncio.to_thread(old.stop, 5)
        stack.workers.clear()
        stack.extra_worker_env = env
        worker = await asyncio.to_thread(stack.start_worker)
    result = IdleBreakdown(sessions=sessions, window_s=window_s, label=label, worker_env=env)
    pids = {"worker": worker.proc.pid}
    await _wait_settled(worker.proc.pid, settle_s, cap_s=4 * settle_s + 5)
    window = CpuWindow(pids)
    window.start()
    await asyncio.sleep(window_s)
    result.baseline_cpu_pct = window.stop()["worker"]
    api = GatewayApi(stack.gateway_url, stack.api_key)
    try:
        for r in range(rounds):
            for variant in VARIANTS:
                live: list[Live] = []
                up = 0
                try:
                    failed = await _open(api, live, variant, sessions, wait_s)
                    result.failures += failed
                    up = sessions - failed
                    await _wait_settled(worker.proc.pid, settle_s, cap_s=4 * settle_s + 5)
                    spy = None
                    if profile and r == 0 and variant.name == "full":
                        spy = _Spy(worker.proc.pid, window_s)
                    window.start()
                    await asyncio.sleep(window_s)
                    used = window.stop()["worker"]
                    if spy is not None:
                        result.profile, result.profile_note = await spy.parts()
                finally:
                    await _end_all(api, live)
                if up == 0:
                    continue  # nothing to divide by: the variant keeps fewer rounds
                per = (used - (result.baseline_cpu_pct or 0.0)) / up
                result.per_session.setdefault(variant.name, []).append(per)
                print(
                    f"  idle cpu {label} [{r + 1}/{rounds}] {variant.name}: "
                    f"{per:.1f}% of a core/session",
                    file=sys.stderr,
                    flush=True,
                )
                await asyncio.sleep(2)  # the ended sessions' processes go before the next opens
    finally:
        await api.aclose()
    return result


async def _open(api: GatewayApi, live: list[Live], variant: Variant, n: int, wait_s: float) -> int:
    """Opens `n` sessions of the variant; answers how many failed to come up (greeted). The
    wait is generous: this measures holding sessions, not how fast they come (density does)."""
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        await asyncio.sleep(i * 0.5)
        body: dict[str, Any] = {"agentId": "demo", "userIdentity": f"bench-idle-{i}"}
        if not variant.ambience:
            body["agentConfig"] = NO_AMBIENCE
        try:
            started = await api.start(**body)
            listener = Listener(microphone=variant.microphone)
            live.append(Live(started.room_name, listener))
            await listener.join(started.livekit_url, started.user_token)
            await asyncio.wait_for(listener.greeting.wait(), max(30.0, 3 * wait_s))
        except Exception as exc:  # noqa: BLE001 - counted; the variant is measured on what came up
            failures += 1
            print(f"  idle cpu: a session failed: {exc!r}"[:300], file=sys.stderr, flush=True)

    await asyncio.gather(*(one(i) for i in range(n)))
    return failures


class _Spy:
    """py-spy (pinned in requirements.lock) sampling the worker and its job processes."""

    RATE = 100

    def __init__(self, pid: int, seconds: float) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="voicegw-pyspy-"))
        self._out = self._dir / "raw.txt"
        self._seconds = seconds
        exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
        self._proc: subprocess.Popen[bytes] | None = None
        with contextlib.suppress(OSError):
            self._proc = subprocess.Popen(
                [
                    exe,
                    "record",
                    "--pid",
                    str(pid),
                    "--subprocesses",
                    "--nonblocking",
                    "--duration",
                    str(max(1, int(seconds))),
                    "--rate",
                    str(self.RATE),
                    "--format",
                    "raw",
                    "--output",
                    str(self._out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    async def parts(self) -> tuple[dict[str, float], str]:
        if self._proc is None:
            return {}, "py-spy could not be started"
        try:
            await asyncio.to_thread(self._proc.wait, self._seconds + 30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            return {}, "py-spy did not finish"
        try:
            text = self._out.read_text() if self._out.exists() else ""
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
        RAW_PROFILE.parent.mkdir(exist_ok=True)
        RAW_PROFILE.write_text(text)
        if not text:
            return {}, "py-spy recorded nothing (ptrace not permitted?)"
        return split_profile(text), (
            f"py-spy {self.RATE} Hz over {self._seconds:.0f} s, Python threads only (the "
            "WebRTC/Opus threads are native and show only in the switched-off differences)"
        )


def split_profile(raw: str) -> dict[str, float]:
    """Collapsed py-spy stacks -> each part's share (%) of the worker's busy Python samples (by
    the innermost frame that names one). Shares, not core percentages: py-spy --nonblocking
    also samples waiting threads, which are left out here by their innermost frame."""
    parts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not count.isdigit() or ";" not in stack:
            continue
        frames = [f for f in stack.lower().split(";") if not f.startswith(("process ", "thread "))]
        if not frames or frames[-1].split(" (")[0].split(".")[-1] in IDLE_FILTER:
            continue  # py-spy --nonblocking also samples threads that wait
        if any(k in frames[-1] for k in IDLE_FILTER if " " in k):
            continue
        part = "other Python (event loop, livekit-agents session, logging)"
        for frame in reversed(frames):
            found = next(
                (name for name, keys in PROFILE_PARTS if any(k in frame for k in keys)), None
            )
            if found:
                part = found
                break
        parts[part] += int(count)
    total = sum(parts.values()) or 1
    return {name: round(100.0 * n / total, 1) for name, n in parts.most_common()}
