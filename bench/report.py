"""Turns the measures into the markdown printed at the end and written to bench/results/."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.accuracy import GROUPS, AccuracyResult
from bench.audio_parts import AudioParts
from bench.density import DensityRun
from bench.idle_cpu import IdleBreakdown
from bench.machine import describe
from bench.no_worker import NoWorkerResult
from bench.pipeline_log import STAGES
from bench.sessions import SessionsResult
from bench.start_load import TARGETS, Level
from bench.stats import Summary, fmt, fmt_ratio, markdown_table
from devstack.asr_accuracy import NOT_UNDERSTOOD, OUTCOMES, RIGHT, WRONG

TARGET_START_VS_FLOOR = 0.5
TARGET_ADDED_P50_MS = 3.0
TARGET_READY_P50_MS = 300.0
TARGET_GREETING_P50_MS = 700.0
TARGET_V2V_P50_MS = 700.0
TARGET_INTERIM_P50_MS = 500.0
TARGET_RIGHT = 0.90
TARGET_WRONG = 0.03
TARGET_SESSIONS = 20
TARGET_MB_PER_SESSION = 60.0  # issue 13 (was 150)
TARGET_IDLE_CPU_PCT = 5.0
TARGET_NO_WORKER_MS = 100.0
TARGET_WAIT_FOR_AGENT_P50_MS = 400.0


@dataclass
class Results:
    mode: str
    machine: dict[str, str]
    started_at: str
    wall_s: float = 0.0
    start: list[Level] = field(default_factory=list)
    no_worker: NoWorkerResult | None = None
    sessions: SessionsResult | None = None
    density: list[DensityRun] = field(default_factory=list)
    idle: list[IdleBreakdown] = field(default_factory=list)
    audio_parts: AudioParts | None = None
    accuracy: AccuracyResult | None = None
    # per phase: CPU taken by processes outside the bench (other work on a shared machine)
    contention: dict[str, dict[str, float] | None] = field(default_factory=dict)


def verdict(value: float | None, target: float, *, at_least: bool = False) -> str:
    if value is None:
        return "not measured"
    met = value >= target if at_least else value <= target
    return "met" if met else "missed"


def _level(results: Results, concurrency: int) -> Level | None:
    return next((lv for lv in results.start if lv.concurrency == concurrency), None)


def summary_table(results: Results) -> str:
    rows: list[list[str]] = []
    c16, c1 = _level(results, 16), _level(results, 1)
    for gw, store in (("gateway", "SQLite"), ("gateway_pg", "PostgreSQL")):
        if c16 is not None and gw in c16.results:
            r = c16.vs_floor(gw)
            rows.append(
                [
                    f"/start throughput at c=16, gateway on {store} / floor",
                    f"{fmt_ratio(r)} ({fmt(c16.rps(gw))} vs {fmt(c16.rps('floor'))} req/s)",
                    f">= {TARGET_START_VS_FLOOR:.2f}x",
                    verdict(r, TARGET_START_VS_FLOOR, at_least=True),
                ]
            )
        if c1 is not None and gw in c1.results:
            added = c1.added_p50_ms(gw)
            one = c1.added_p50_ms(gw, "floor_one")
            rows.append(
                [
                    f"gateway-added p50 latency at c=1 on {store} (gateway p50 - floor p50)",
                    f"{fmt(added, 1)} ms ({fmt(one, 1)} ms over the one-call floor)",
                    f"<= {TARGET_ADDED_P50_MS:.0f} ms",
                    verdict(added, TARGET_ADDED_P50_MS),
                ]
            )
    nw = results.no_worker
    if nw is not None:
        summ = nw.summary
        rows.append(
            [
                "/start with no worker: 503 no_agent_available, p50 / p95 (max)",
                f"{_p50_p95(summ)} ({fmt(summ.max if summ else None, 1)} ms); "
                f"{nw.rooms_left} rooms left, {sum(nw.other_answers.values())} other answers",
                f"p95 < {TARGET_NO_WORKER_MS:.0f} ms",
                "missed"
                if nw.rooms_left or nw.other_answers
                else verdict(summ.p95 if summ else None, TARGET_NO_WORKER_MS),
            ]
        )
    s = results.sessions
    if s is not None:
        wait, direct, after = s.wait_for_agent, s.start_plus_agent_ready, s.wait_overhead
        present = sum(1 for w in s.waits if w.agent_in_room_at_join)
        rows.append(
            [
                "waitForAgent: request to answer (agent in the room), p50 / p95",
                f"{_p50_p95(wait)}; agent there at join in {present}/{len(s.waits)}; answered "
                f"{fmt(after.p50 if after else None)} ms (p50) after the agent's join stamp; "
                f"without it, /start + agent ready p50 {fmt(direct.p50 if direct else None)} ms",
                f"p50 <= {TARGET_WAIT_FOR_AGENT_P50_MS:.0f} ms",
                "missed"
                if present < len(s.waits)
                else verdict(wait.p50 if wait else None, TARGET_WAIT_FOR_AGENT_P50_MS),
            ]
        )
        timed: list[tuple[str, Summary | None, float]] = [
            ("agent ready (LiveKit join stamp)", s.summary("agent_ready_ms"), TARGET_READY_P50_MS),
            ("greeting first audio after join", s.summary("greeting_ms"), TARGET_GREETING_P50_MS),
            (
                "first live caption of a question after its start",
                s.interim_caption,
                TARGET_INTERIM_P50_MS,
            ),
            ("voice-to-voice, offline engines", s.voice_to_voice, TARGET_V2V_P50_MS),
        ]
        for label, summ, target in timed:
            rows.append(
                [
                    f"{label}, p50 / p95",
                    _p50_p95(summ),
                    f"p50 <= {target:.0f} ms",
                    verdict(summ.p50 if summ else None, target),
                ]
            )
    agent = results.accuracy.run("agent model") if results.accuracy else None
    if agent is not None:
        for condition in ("clean", "noisy", "phone"):
            right, wrong = agent.share(condition, RIGHT), agent.share(condition, WRONG)
            n = sum(agent.counts()[condition].values())
            rows.append(
                [
                    f"spoken questions answered right / wrong FAQ, {condition} (n={n})",
                    f"{_pct(right)} / {_pct(wrong)}",
                    f">= {TARGET_RIGHT:.0%} / <= {TARGET_WRONG:.0%}"
                    + ("" if condition != "phone" else " (reported)"),
                    "met"
                    if right is not None
                    and wrong is not None
                    and right >= TARGET_RIGHT
                    and wrong <= TARGET_WRONG
                    else "missed",
                ]
            )
    for idle in results.idle:
        full = idle.mean("full")
        rows.append(
            [
                f"idle-listening session CPU, {idle.label} (full variant, per session)",
                f"{fmt(full, 1)}% of one core ({idle.sessions} sessions, "
                f"{len(idle.per_session.get('full', []))} round(s))",
                f"<= {TARGET_IDLE_CPU_PCT:.0f}%",
                verdict(full, TARGET_IDLE_CPU_PCT),
            ]
        )
    for run in results.density:
        held = run.held
        mb = run.per_session_mb()
        ok = (
            held is not None
            and held.sessions >= TARGET_SESSIONS
            and mb is not None
            and mb[0] <= TARGET_MB_PER_SESSION
        )
        rows.append(
            [
                f"sessions one worker holds ({run.executor} executor)",
                f"{held.sessions if held else 0} sessions, "
                f"{fmt(mb[0] if mb else None)} MB PSS ({fmt(mb[1] if mb else None)} MB RSS) "
                f"and {fmt(run.cpu_per_session(), 1)}% of a core each; CPU-bound estimate "
                f"{fmt(run.cpu_bound_estimate())} sessions",
                f">= {TARGET_SESSIONS} at <= {TARGET_MB_PER_SESSION:.0f} MB",
                "met" if ok else ("not measured" if held is None else "missed"),
            ]
        )
    return markdown_table(["measure", "result", "target", "status"], rows)


def summary_json(results: Results) -> dict[str, object]:
    """The machine-readable summary (issue 13, item 4): every value from this run's measures,
    None where its phase did not run or nothing passed."""
    c16, c1 = _level(results, 16), _level(results, 1)
    s = results.sessions
    after = next((i for i in results.idle if i.label == "after"), None)
    before = next((i for i in results.idle if i.label == "before"), None)
    held = [r.held.sessions if r.held else 0 for r in results.density]
    pss = [mb[0] for r in results.density if (mb := r.per_session_mb()) is not None]

    def p50(summ: Summary | None) -> float | None:
        return round(summ.p50, 1) if summ else None

    def rounded(value: float | None, digits: int = 2) -> float | None:
        return None if value is None else round(value, digits)

    return {
        "sessions_per_worker": max(held) if held else None,
        "sessions_per_worker_by_executor": {
            r.executor: (r.held.sessions if r.held else 0) for r in results.density
        },
        "idle_session_cpu_pct": rounded(after.mean("full") if after else None, 1),
        "idle_session_cpu_pct_before": rounded(before.mean("full") if before else None, 1),
        "session_pss_mb": rounded(min(pss) if pss else None, 1),
        "start_over_floor_c16_sqlite": rounded(c16.vs_floor("gateway") if c16 else None),
        "start_over_floor_c16_postgres": rounded(c16.vs_floor("gateway_pg") if c16 else None),
        "gateway_added_p50_ms": rounded(c1.added_p50_ms("gateway") if c1 else None, 1),
        "gateway_added_p50_ms_postgres": rounded(c1.added_p50_ms("gateway_pg") if c1 else None, 1),
        "gateway_added_p50_ms_vs_one_call_floor": rounded(
            c1.added_p50_ms("gateway", "floor_one") if c1 else None, 1
        ),
        "agent_ready_p50_ms": p50(s.summary("agent_ready_ms")) if s else None,
        "greeting_first_audio_p50_ms": p50(s.summary("greeting_ms")) if s else None,
        "voice_to_voice_p50_ms": p50(s.voice_to_voice) if s else None,
    }


def _pct(x: float | None, digits: int = 0) -> str:
    return "n/a" if x is None else f"{x:.{digits}%}"


def accuracy_table(result: AccuracyResult) -> str:
    rows = []
    for run in result.runs:
        counts = run.counts()
        for group in GROUPS:
            c = counts.get(group)
            if not c:
                continue
            rows.append(
                [
                    run.name,
                    group,
                    sum(c.values()),
                    *(_pct(run.share(group, o), 1) for o in OUTCOMES),
                ]
            )
    return markdown_table(["recognizer", "questions", "n", *OUTCOMES], rows)


def accuracy_limits(result: AccuracyResult) -> list[str]:
    """Where the right answers are lost, from the run's own numbers, and what would move it."""
    exact, agent = result.run("exact words (no recognizer)"), result.run("agent model")
    lines: list[str] = []
    if exact is not None:
        lines.append(
            f"phrasings: given the exact words the responder answers "
            f"{_pct(exact.share('all', RIGHT))} right, {_pct(exact.share('all', WRONG))} wrong "
            "(the ceiling any recognizer could reach with this FAQ)"
        )
    if agent is not None:
        answerable = agent.share("answerable", RIGHT)
        worst = min(("clean", "noisy", "phone"), key=lambda c: agent.share(c, RIGHT) or 0.0)
        lines.append(
            f"the recognizer: through PocketSphinx {_pct(answerable)} of the answerable "
            f"questions are answered right (worst condition: {worst}, "
            f"{_pct(agent.share(worst, RIGHT))}); its acoustic model (CMU en-us, 16 kHz) "
            "mishears synthetic voices, office noise and 8 kHz telephone audio"
        )
        lines.append(
            f"rejection: wrong answers are held at {_pct(agent.share('all', WRONG), 1)} by "
            "weighing each heard word by its lattice posterior; the price is "
            f"{_pct(agent.share('answerable', NOT_UNDERSTOOD))} of answerable questions "
            'met with "did not understand"'
        )
    lines.append(
        "what reaching 90% would take: a stronger offline acoustic model (a neural recognizer "
        "such as Vosk/Kaldi or whisper.cpp; none ships its English weights in a registry we may "
        "install from) or a cloud STT; an 8 kHz model for telephone calls"
    )
    return lines


def _p50_p95(s: Summary | None) -> str:
    if s is None:
        return "n/a"
    digits = 1 if s.p95 < 100 else 0
    return f"{s.p50:.{digits}f} / {s.p95:.{digits}f} ms (n={s.n})"


def start_table(levels: list[Level]) -> str:
    rows = []
    for lv in levels:
        rows.append(
            [
                lv.concurrency,
                *(fmt(lv.rps(t)) for t in TARGETS),
                fmt_ratio(lv.gateway_vs_ceiling),
                fmt_ratio(lv.vs_floor("gateway")),
                fmt_ratio(lv.vs_floor("gateway_pg")),
                *(_p50_p99(lv, t) for t in TARGETS),
                fmt(lv.added_p50_ms("gateway"), 1),
                fmt(lv.added_p50_ms("gateway_pg"), 1),
                sum(lv.results[t].errors for t in TARGETS if t in lv.results),
            ]
        )
    return markdown_table(
        [
            "c",
            "ceiling req/s",
            "floor req/s",
            "floor 1-call req/s",
            "gateway SQLite req/s",
            "gateway PG req/s",
            "gw SQLite/ceiling",
            "gw SQLite/floor",
            "gw PG/floor",
            "ceiling p50/p99 ms",
            "floor p50/p99 ms",
            "floor 1-call p50/p99 ms",
            "gateway SQLite p50/p99 ms",
            "gateway PG p50/p99 ms",
            "gw SQLite added p50 ms",
            "gw PG added p50 ms",
            "errors",
        ],
        rows,
    )


def _p50_p99(level: Level, target: str) -> str:
    r = level.results.get(target)
    s = r.summary if r else None
    return "n/a" if s is None else f"{s.p50:.1f} / {s.p99:.1f}"


def latency_table(s: SessionsResult) -> str:
    rows: list[list[str]] = []
    named = [
        ("start_ms", "/start, one at a time"),
        ("agent_ready_ms", "agent ready (LiveKit join stamp - /start answer)"),
        ("agent_seen_ms", "agent ready as the client saw it"),
        ("greeting_ms", "greeting first audio (client join -> first loud frame)"),
    ]
    for name, label in named:
        rows.append(_latency_row(label, s.summary(name)))
    rows.append(_latency_row("waitForAgent /start (request -> answer)", s.wait_for_agent))
    rows.append(_latency_row("  its answer after the agent's LiveKit join stamp", s.wait_overhead))
    rows.append(
        _latency_row(
            "without it: /start + agent ready (request -> agent)", s.start_plus_agent_ready
        )
    )
    rows.append(
        _latency_row("first live caption (start of question -> first interim)", s.interim_caption)
    )
    rows.append(
        _latency_row("voice-to-voice (end of question -> first answer frame)", s.voice_to_voice)
    )
    for stage in STAGES:
        rows.append(_latency_row(f"  stage: {stage.replace('_', ' ')}", s.stage(stage)))
    failures = sum(1 for x in s.sessions if x.error) + sum(1 for v in s.voice if v.error)
    table = markdown_table(["measure", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows)
    return table + f"\n\nFailed sessions: {failures}."


def _latency_row(label: str, s: Summary | None) -> list[str]:
    if s is None:
        return [label, "0", "n/a", "n/a", "n/a", "n/a"]
    return [label, str(s.n), fmt(s.p50), fmt(s.p95), fmt(s.p99), fmt(s.max)]


def density_table(runs: list[DensityRun]) -> str:
    rows = []
    for run in runs:
        for step in run.steps:
            mb = run.per_session_mb(step)
            worker_cpu = step.cpu_pct.get("worker")
            rows.append(
                [
                    run.executor,
                    step.sessions,
                    f"{fmt(step.ready_p50)} / {fmt(step.ready_p95)}",
                    fmt(max(step.greeting_ms) if step.greeting_ms else None),
                    fmt(worker_cpu),
                    fmt(worker_cpu / step.sessions if worker_cpu is not None else None, 1),
                    fmt(step.cpu_pct.get("livekit")),
                    fmt(step.cpu_pct.get("gateway")),
                    fmt(step.cpu_pct.get("bench")),
                    fmt(step.cpu_pct.get("others")),
                    fmt(step.cpu_pct.get("machine")),
                    fmt(step.memory.pss_mb if step.memory else None),
                    fmt(mb[0] if mb else None),
                    fmt(mb[1] if mb else None),
                    step.stop_reason or "ok",
                ]
            )
    return markdown_table(
        [
            "executor",
            "sessions",
            "new sessions' agent ready p50/p95 ms",
            "greeting max ms",
            "worker CPU %",
            "CPU %/session",
            "livekit CPU %",
            "gateway CPU %",
            "bench CPU %",
            "other procs CPU %",
            "machine CPU % (all cores)",
            "worker PSS MB",
            "PSS MB/session",
            "RSS MB/session",
            "verdict",
        ],
        rows,
    )


def idle_table(idle: IdleBreakdown) -> str:
    variants = markdown_table(
        ["variant", "worker CPU % of one core per session (each round)", "mean"],
        [
            [name, ", ".join(fmt(v, 1) for v in values), fmt(idle.mean(name), 1)]
            for name, values in idle.per_session.items()
        ],
    )
    parts = markdown_table(
        ["part", "% of one core per session"],
        [[name, fmt(value, 1)] for name, value in idle.parts()],
    )
    text = (
        f"{idle.sessions} sessions per variant, {idle.window_s:.0f} s windows, idle worker "
        f"{fmt(idle.baseline_cpu_pct, 1)}% CPU (subtracted); {idle.failures} session(s) failed "
        "to come up.\n\n" + variants + "\n\n" + parts
    )
    if idle.profile:
        text += (
            "\n\nPython time in the full variant ("
            + idle.profile_note
            + "):\n\n"
            + markdown_table(
                ["part (py-spy)", "share of the worker's busy Python samples %"],
                [[name, fmt(v, 1)] for name, v in idle.profile.items()],
            )
        )
    elif idle.profile_note:
        text += f"\n\nProfile: {idle.profile_note}."
    return text


def render(results: Results) -> str:
    parts = [
        f"# Benchmark results ({results.mode} mode)",
        "",
        f"Run {results.started_at}, wall time {results.wall_s:.0f} s.",
        f"Machine: {describe(results.machine)}.",
        "",
        "## Summary",
        "",
        summary_table(results),
    ]
    if results.contention:
        parts += ["", "CPU taken by processes outside the bench while it ran (a shared machine):"]
        for phase, load in results.contention.items():
            parts.append(
                f"- {phase}: "
                + (
                    "n/a"
                    if load is None
                    else f"{load['others_pct_of_one_core']:.0f}% of one core on average, "
                    f"machine {load['machine_pct']:.0f}% busy"
                )
            )
    if results.start:
        parts += [
            "",
            "## /v1/sessions/start under load (ceiling, floor, gateway)",
            "",
            start_table(results.start),
        ]
    if results.accuracy is not None:
        parts += [
            "",
            "## Spoken questions (demo agent, offline through the worker's STT and responder)",
            "",
            accuracy_table(results.accuracy),
            "",
            "What limits it:",
            *(f"- {line}" for line in accuracy_limits(results.accuracy)),
        ]
    if results.sessions is not None:
        parts += ["", "## Session latencies", "", latency_table(results.sessions)]
    if results.audio_parts is not None:
        ap = results.audio_parts
        parts += [
            "",
            "## Audio parts of a silent session, each alone (process CPU time)",
            "",
            f"{ap.audio_seconds:.0f} s of audio per part, {ap.rounds} rounds in alternation, "
            "median; receiving/decoding Opus and encoding the published tracks run in LiveKit's "
            "native threads and are not in this table (see the variants below).",
            "",
            markdown_table(
                ["part", "% of one core per stream (median)", "rounds"],
                [
                    [name, fmt(ap.pct[name], 2), ", ".join(fmt(v, 2) for v in values)]
                    for name, values in ap.samples.items()
                ],
            ),
        ]
    for idle in results.idle:
        parts += [
            "",
            f"## Idle-listening session: CPU by part ({idle.label}; worker env {idle.worker_env})",
            "",
            idle_table(idle),
        ]
    if results.density:
        parts += ["", "## Density", ""]
        for run in results.density:
            base = run.baseline
            parts.append(
                f"- {run.executor}: idle worker {fmt(base.pss_mb if base else None)} MB PSS / "
                f"{fmt(base.rss_mb if base else None)} MB RSS in "
                f"{base.processes if base else 0} processes, {fmt(run.baseline_cpu_pct)}% CPU; "
                f"env {run.worker_env}"
            )
        parts += ["", density_table(results.density)]
    return "\n".join(parts) + "\n"
