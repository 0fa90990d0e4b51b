"""The worker's own Prometheus series, observed inside the job processes that run the sessions.

Every process of the worker writes its samples to files in one multiprocess directory
(prometheus-client's multiprocess mode, set up by __main__ before anything imports
prometheus_client); the main process's /metrics merges them (metrics_endpoint.py). Every series
here has labels, so no sample file exists before a job observes something: livekit-agents empties
the directory when the worker starts, and would delete a file made earlier.
"""

from __future__ import annotations

from livekit.agents import ErrorEvent, MetricsCollectedEvent
from prometheus_client import Counter, Histogram

# From a few ms (an offline engine's first byte) to several seconds (a cloud LLM under load).
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)

PIPELINE_STAGE = Histogram(
    "voicegw_worker_pipeline_stage_seconds",
    "Voice pipeline latency per stage and turn: end_of_speech (the caller stops speaking -> turn "
    "committed), stt (transcription request, or transcript delay of a streaming STT), llm (time "
    "to first token), tts (time to first audio).",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
ENGINE_ERRORS = Counter(
    "voicegw_worker_engine_errors_total",
    "Engine errors: by engine (stt, llm, tts, config for an engine that could not be built) and "
    "whether livekit-agents retried past it.",
    ["engine", "recoverable"],
)
SESSIONS = Counter(
    "voicegw_worker_sessions_total",
    "Sessions this worker's jobs took, by outcome (started, failed).",
    ["outcome"],
)


class PipelineObserver:
    """Turns livekit-agents' MetricsCollectedEvent into stage observations for one session."""

    def __init__(self, *, streaming_stt: bool) -> None:
        # A non-streaming STT reports its request time; a streaming one only the EOU's delay.
        self._streaming_stt = streaming_stt

    def __call__(self, ev: MetricsCollectedEvent) -> None:
        m = ev.metrics
        if m.type == "eou_metrics":
            _observe("end_of_speech", m.end_of_utterance_delay)
            if self._streaming_stt:
                _observe("stt", m.transcription_delay)
        elif m.type == "stt_metrics" and not self._streaming_stt:
            _observe("stt", m.duration)
        elif m.type == "llm_metrics":
            _observe("llm", m.ttft)
        elif m.type == "tts_metrics":
            _observe("tts", m.ttfb)


def _observe(stage: str, seconds: float) -> None:
    if seconds > 0:  # livekit-agents reports 0 or -1 for "not measured"
        PIPELINE_STAGE.labels(stage=stage).observe(seconds)


def count_engine_error(ev: ErrorEvent) -> None:
    kind = str(getattr(ev.error, "type", "other")).removesuffix("_error")
    recoverable = bool(getattr(ev.error, "recoverable", False))
    ENGINE_ERRORS.labels(engine=kind, recoverable=str(recoverable).lower()).inc()
