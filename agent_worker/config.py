"""Worker settings: read once from the environment (prefix AGENT_WORKER_), LiveKit names kept."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGENT_WORKER_", extra="ignore")

    agent_name: str = "voice-agent"
    livekit_url: str = Field(
        default="ws://127.0.0.1:7880",
        validation_alias=AliasChoices("LIVEKIT_URL", "AGENT_WORKER_LIVEKIT_URL"),
    )
    livekit_api_key: str = Field(
        default="devkey",
        validation_alias=AliasChoices("LIVEKIT_API_KEY", "AGENT_WORKER_LIVEKIT_API_KEY"),
    )
    livekit_api_secret: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("LIVEKIT_API_SECRET", "AGENT_WORKER_LIVEKIT_API_SECRET"),
    )
    # Where final transcript segments and agent failures are reported.
    gateway_url: str = "http://127.0.0.1:8080"

    # The worker's own health/HTTP port; 0 picks a free one (several workers on one host).
    http_host: str = "127.0.0.1"
    http_port: int = 8081
    job_executor: Literal["process", "thread"] = "process"
    num_idle_processes: int = Field(default=2, ge=0)
    # Capacity is counted in sessions, not in machine-wide CPU: on shared hosts CPU readings are
    # noisy and would refuse jobs this worker can hold. Measure the number with `make bench`.
    max_sessions: int = Field(default=20, ge=1)
    # How often the worker tells the gateway its free capacity (also at once on every change of
    # its session count and on SIGTERM); the gateway ignores reports older than a few seconds.
    report_interval_seconds: float = Field(default=2.0, gt=0, le=60)
    # On SIGTERM: stop taking jobs, let live sessions run this long, then close them.
    drain_timeout_seconds: int = Field(default=300, ge=0)
    # Turn taking: the pause that ends the caller's utterance (VAD), then the wait before the
    # agent answers. Their sum is the floor of the agent's answer time.
    vad_min_silence_seconds: float = Field(default=0.35, ge=0.1, le=3)
    endpointing_min_delay: float = Field(default=0.3, ge=0.05, le=5)
    # The ambient clip decoded once per process and shared by its sessions (agent_worker/
    # background.py); false decodes it per session and loop, as livekit-agents does.
    shared_ambience: bool = True
    # The caller's audio below this level (dBFS, RMS) is held back from the VAD and the
    # recognizer while nobody speaks (agent_worker/quiet_gate.py); false passes every frame.
    # Quiet rooms and phone lines sit near -60 dBFS and speech well above -40.
    quiet_gate: bool = True
    quiet_gate_dbfs: float = Field(default=-50.0, le=0)
    quiet_gate_preroll_seconds: float = Field(default=0.8, ge=0, le=5)
    quiet_gate_hangover_seconds: float = Field(default=2.0, gt=0, le=30)
    # Agent language models for the offline recognizer, built once per FAQ and kept here.
    asr_cache_dir: Path = Path.home() / ".cache" / "voicegw" / "pocketsphinx"
    # GET /metrics (Prometheus) on metrics_host:metrics_port; None turns it off. Job processes
    # write their samples to metrics_dir (a fresh temporary directory when unset), emptied at start.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=9464, ge=0, le=65535)
    metrics_dir: Path | None = None
    log_level: str = "INFO"
