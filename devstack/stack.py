"""The whole stack as child processes: LiveKit, the gateway and the agent worker, on loopback.

`make dev`, the end-to-end tests and the benchmarks all start it through this class, so what the
tests prove is what a developer runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from agent_worker.capacity_report import FIRST_REPORT_MARK
from devstack.livekit_server import LiveKitServer
from devstack.ports import free_port, free_tcp_udp_port
from devstack.processes import LoggedProcess
from devstack.redis_server import RedisServer
from devstack.sip_server import SipServer

# A worker is ready once the gateway has its first capacity report (after LiveKit registered it):
# before that, /start would refuse with no_agent_available.
WORKER_READY_MARK = FIRST_REPORT_MARK
LOOPBACK_DESTINATIONS = ["127.0.0.1/32", "::1/128"]


@dataclass
class Process(LoggedProcess):
    metrics_url: str | None = None

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is not None:
            return
        # The leader only: a worker drains and stops its own job processes.
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # nothing of the group may outlive it


@dataclass
class Stack:
    api_key: str
    gateway_port: int = field(default_factory=free_port)
    database_url: str | None = None
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="voicegw-stack-")))
    agent_name: str = "voice-agent"
    extra_gateway_env: dict[str, str] = field(default_factory=dict)
    extra_worker_env: dict[str, str] = field(default_factory=dict)
    # The publishable key of the page the gateway serves (stored by the gateway at start).
    web_key: str = field(default_factory=lambda: f"vgw_pk_{secrets.token_urlsafe(32)}")
    # Phone calls: Redis shared by LiveKit and its SIP service, and the SIP service itself.
    phone: bool = True
    sip_port: int | None = None  # None: a free one
    livekit: LiveKitServer = field(init=False)
    redis: RedisServer | None = field(init=False, default=None)
    sip: SipServer | None = field(init=False, default=None)
    gateway: Process | None = None
    workers: list[Process] = field(default_factory=list)
    _workers_started: int = 0

    def __post_init__(self) -> None:
        if self.phone:
            self.redis = RedisServer(log_path=self.log_dir / "redis.log")
        self.livekit = LiveKitServer(
            webhook_urls=[f"{self.gateway_url}/v1/livekit/webhook"],
            log_path=self.log_dir / "livekit.log",
            redis_address=self.redis.address if self.redis else None,
        )
        if self.redis is not None:
            self.sip = SipServer(
                api_key=self.livekit.api_key,
                api_secret=self.livekit.api_secret,
                ws_url=self.livekit.url,
                redis_address=self.redis.address,
                log_path=self.log_dir / "sip.log",
                port=self.sip_port or free_tcp_udp_port(),
            )
        if self.database_url is None:
            self.database_url = f"sqlite+aiosqlite:///{self.log_dir / 'voicegw.db'}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def _livekit_env(self) -> dict[str, str]:
        return {
            "LIVEKIT_URL": self.livekit.url,
            "LIVEKIT_API_KEY": self.livekit.api_key,
            "LIVEKIT_API_SECRET": self.livekit.api_secret,
        }

    def gateway_env(self) -> dict[str, str]:
        return {
            **self._livekit_env(),
            "VOICEGW_HOST": "127.0.0.1",
            "VOICEGW_PORT": str(self.gateway_port),
            "VOICEGW_DATABASE_URL": self.database_url or "",
            "VOICEGW_BOOTSTRAP_API_KEY": self.api_key,
            "VOICEGW_AGENT_NAME": self.agent_name,
            "VOICEGW_WEB_PUBLISHABLE_KEY": self.web_key,
            # Network safety: trunks and transfers may point at this machine only, so no test
            # and no `make dev` can have the SIP service dial out.
            "VOICEGW_SIP_ALLOWED_DESTINATIONS": json.dumps(LOOPBACK_DESTINATIONS),
            **self.extra_gateway_env,
        }

    def worker_env(self) -> dict[str, str]:
        return {
            **self._livekit_env(),
            "AGENT_WORKER_AGENT_NAME": self.agent_name,
            "AGENT_WORKER_GATEWAY_URL": self.gateway_url,
            "AGENT_WORKER_HTTP_PORT": "0",
            **self.extra_worker_env,
        }

    def start(self) -> None:
        if self.redis is not None:
            self.redis.start()
        self.livekit.start()
        if self.sip is not None:
            self.sip.start()
        self.start_gateway()
        self.start_worker()

    def start_gateway(self) -> None:
        self.gateway = self._spawn(
            "gateway", [sys.executable, "-m", "voice_gateway"], self.gateway_env()
        )
        _wait_http(f"{self.gateway_url}/healthz", self.gateway, 90)
        if any(w.proc.poll() is None for w in self.workers):
            # A restarted gateway knows the running workers again from their next report.
            _wait_agents(f"{self.gateway_url}/readyz", self.gateway, 30)

    def start_worker(self, timeout: float = 90) -> Process:
        self._workers_started += 1
        metrics_port = free_port()  # one per worker: several may run beside each other
        worker = self._spawn(
            f"worker{self._workers_started - 1}",
            [sys.executable, "-m", "agent_worker", "start"],
            {**self.worker_env(), "AGENT_WORKER_METRICS_PORT": str(metrics_port)},
        )
        worker.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self.workers.append(worker)
        wait_registered(worker, timeout)
        return worker

    def restart_livekit(self, *, empty_redis: bool = False) -> None:
        """LiveKit and its SIP service go down and come back on the same ports (with an empty
        Redis if asked): what an outage of the LiveKit tier looks like to the gateway and the
        worker, which reconnect by themselves."""
        if self.sip is not None:
            self.sip.stop()
        self.livekit.stop()
        if self.redis is not None and empty_redis:
            self.redis.restart()
        self.livekit.start()
        if self.sip is not None:
            self.sip.start()

    def stop_gateway(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop(timeout=20)
        self.workers.clear()
        self.stop_gateway()
        if self.sip is not None:
            self.sip.stop()
        self.livekit.stop()
        if self.redis is not None:
            self.redis.stop()

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Process:
        # Cloud keys of the caller's shell never leak into the stack: the offline engines are
        # the default, and the tests of a missing key must not depend on the machine.
        base = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        return Process.start(name, argv, log_path=self.log_dir / f"{name}.log", env={**base, **env})


def wait_registered(worker: Process, timeout: float) -> None:
    """Until the worker's first capacity report reached the gateway (WORKER_READY_MARK)."""
    deadline = time.monotonic() + timeout
    while WORKER_READY_MARK not in worker.log_text():
        if worker.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{worker.name} did not register:\n{worker.log_text()[-3000:]}")
        time.sleep(0.1)


def _wait_agents(url: str, process: Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if json.load(resp).get("checks", {}).get("agents", "ok") == "ok":
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{process.name} heard from no agent worker at {url}")


def _wait_http(url: str, process: Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise RuntimeError(f"{process.name} exited:\n{process.log_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{process.name} not ready at {url}")
