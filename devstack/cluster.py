"""Cluster mode: several "machines" of the deployment on one host's loopback (`make cluster`).

Redis; two livekit-server nodes sharing it (LiveKit's own distributed mode: rooms placed across
nodes, any node answers for any room); two gateway replicas on one PostgreSQL; two agent workers,
each registered with its own node. A load balancer stands in for the Service in front of the
gateways (clients, workers and LiveKit's webhooks use it) and one in front of the LiveKit nodes
(gateways and clients use it). Every config comes from devstack/config_template.py, the template
deploy/ is rendered from.

Each component can be killed and started again on the same ports, which is what `make chaos`
(devstack/chaos.py) and tests/e2e/test_cluster.py do.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import config_template as template
from devstack.balancer import Balancer
from devstack.foreground import fresh_log_dir, print_ready, stop_on_signals
from devstack.livekit_server import LiveKitServer
from devstack.ports import free_port, free_tcp_udp_port
from devstack.postgres import PostgresServer
from devstack.redis_server import RedisServer
from devstack.stack import Process, _wait_http, wait_registered


@dataclass
class ClusterNode(LiveKitServer):
    """A livekit-server node whose config is the cluster template's, on ports fixed for its life,
    so a restarted node comes back where clients and workers look for it."""

    redis: str = ""
    webhook_url: str = ""
    rtc_port: int = field(default_factory=free_tcp_udp_port)
    stun_port: int = field(default_factory=lambda: free_port(2))

    def config(self) -> dict[str, object]:
        return template.livekit_config(
            port=self.port,
            rtc_tcp_port=self.rtc_port,
            rtc=template.LoopbackRtc(udp_port=self.rtc_port, stun_port=self.stun_port),
            redis_address=self.redis,
            webhook_url=self.webhook_url,
            webhook_api_key=self.api_key,
            keys={self.api_key: self.api_secret},
        )


@dataclass
class Cluster:
    api_key: str = field(default_factory=lambda: f"vgw_sk_{secrets.token_urlsafe(32)}")
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="voicegw-cluster-")))
    size: int = 2  # of each: LiveKit nodes, gateway replicas, workers
    extra_gateway_env: dict[str, str] = field(default_factory=dict)
    extra_worker_env: dict[str, str] = field(default_factory=dict)
    redis: RedisServer = field(init=False)
    postgres: PostgresServer = field(init=False)
    nodes: list[ClusterNode] = field(init=False)
    gateway_ports: list[int] = field(init=False)
    gateway_lb: Balancer = field(init=False)
    livekit_lb: Balancer = field(init=False)
    gateways: list[Process | None] = field(init=False)
    workers: list[Process | None] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.redis = RedisServer(log_path=self.log_dir / "redis.log")
        self.postgres = PostgresServer()
        self.gateway_ports = [free_port() for _ in range(self.size)]
        self.gateway_lb = Balancer("gateway", self.gateway_ports)
        secret = secrets.token_urlsafe(32)
        self.nodes = [
            ClusterNode(
                api_secret=secret,
                log_path=self.log_dir / f"livekit{i}.log",
                redis=self.redis.address,
                webhook_url=f"{self.gateway_url}/v1/livekit/webhook",
            )
            for i in range(self.size)
        ]
        self.livekit_lb = Balancer("livekit", [n.port for n in self.nodes])
        self.gateways = [None] * self.size
        self.workers = [None] * self.size

    # --- addresses ------------------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        """The gateways' one address (the balancer)."""
        return f"http://{self.gateway_lb.address}"

    def replica_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.gateway_ports[i]}"

    @property
    def livekit_url(self) -> str:
        """The LiveKit nodes' one address (the balancer)."""
        return f"ws://{self.livekit_lb.address}"

    @property
    def api_secret(self) -> str:
        return self.nodes[0].api_secret

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, *, workers: bool = True) -> None:
        self.redis.start()
        self.postgres.start()
        self.gateway_lb.start()
        self.livekit_lb.start()
        for i in range(self.size):
            self.nodes[i].start()
        for i in range(self.size):
            self.start_gateway(i)
        if workers:
            for i in range(self.size):
                self.start_worker(i)

    def stop(self) -> None:
        for i in range(self.size):
            self._stop(self.workers, i, timeout=20)
        for i in range(self.size):
            self._stop(self.gateways, i)
        for node in self.nodes:
            node.stop()
        self.livekit_lb.stop()
        self.gateway_lb.stop()
        self.postgres.stop()
        self.redis.stop()

    def gateway_env(self, i: int) -> dict[str, str]:
        return {
            **template.gateway_env(
                livekit_url=self.livekit_url, livekit_public_url=self.livekit_url, host="127.0.0.1"
            ),
            "LIVEKIT_API_KEY": self.nodes[0].api_key,
            "LIVEKIT_API_SECRET": self.api_secret,
            "VOICEGW_PORT": str(self.gateway_ports[i]),
            "VOICEGW_DATABASE_URL": self.postgres.url,
            "VOICEGW_BOOTSTRAP_API_KEY": self.api_key,
            **self.extra_gateway_env,
        }

    def worker_env(self, i: int) -> dict[str, str]:
        return {
            **template.worker_env(
                livekit_url=self.nodes[i].url, gateway_url=self.gateway_url, host="127.0.0.1"
            ),
            "LIVEKIT_API_KEY": self.nodes[0].api_key,
            "LIVEKIT_API_SECRET": self.api_secret,
            "AGENT_WORKER_HTTP_PORT": "0",
            "AGENT_WORKER_METRICS_PORT": str(free_port()),
            **self.extra_worker_env,
        }

    def start_gateway(self, i: int, timeout: float = 90) -> Process:
        proc = self._spawn(
            f"gateway{i}", [sys.executable, "-m", "voice_gateway"], self.gateway_env(i)
        )
        self.gateways[i] = proc
        _wait_http(f"{self.replica_url(i)}/healthz", proc, timeout)
        return proc

    def start_worker(self, i: int, timeout: float = 120) -> Process:
        proc = self._spawn(
            f"worker{i}", [sys.executable, "-m", "agent_worker", "start"], self.worker_env(i)
        )
        self.workers[i] = proc
        wait_registered(proc, timeout)
        return proc

    def start_node(self, i: int) -> None:
        self.nodes[i].start()

    # --- faults ---------------------------------------------------------------------------

    def kill_worker(self, i: int, sig: signal.Signals, wait: float = 60) -> None:
        """SIGKILL takes the worker's whole process group (a machine lost); SIGTERM asks the
        worker to drain, and waits up to `wait` seconds for it to finish."""
        proc = self.workers[i]
        if proc is None:
            return
        if sig == signal.SIGKILL:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.proc.pid, signal.SIGKILL)
            proc.proc.wait(10)
        else:
            proc.stop(timeout=wait)
        self.workers[i] = None

    def kill_gateway(self, i: int) -> None:
        proc = self.gateways[i]
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.proc.pid, signal.SIGKILL)
            proc.proc.wait(10)
        self.gateways[i] = None

    def kill_node(self, i: int) -> None:
        node = self.nodes[i]
        if node.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.pid, signal.SIGKILL)
        node.stop()

    def _stop(self, procs: list[Process | None], i: int, timeout: float = 15) -> None:
        proc = procs[i]
        if proc is not None:
            proc.stop(timeout=timeout)
            procs[i] = None

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Process:
        base = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        return Process.start(name, argv, log_path=self.log_dir / f"{name}.log", env={**base, **env})

    def describe(self) -> dict[str, Any]:
        return {
            "gateway": self.gateway_url,
            "gateways": [self.replica_url(i) for i in range(self.size)],
            "livekit": self.livekit_url,
            "livekit_nodes": [n.url for n in self.nodes],
            "redis": self.redis.address,
            "postgres": self.postgres.url,
            "logs": str(self.log_dir),
        }


def main() -> int:
    """`make cluster`: the cluster in the foreground until SIGINT/SIGTERM."""
    cluster = Cluster(
        log_dir=fresh_log_dir(Path(os.environ.get("VOICEGW_CLUSTER_DIR", ".cluster")))
    )
    stop = stop_on_signals()
    try:
        cluster.start()
        for what, where in cluster.describe().items():
            print(f"{what}: {where}")
        print(f"API key (owner, every scope): {cluster.api_key}")
        print_ready(cluster.gateway_url, cluster.api_key)
        stop.wait()
    finally:
        print("stopping...", file=sys.stderr, flush=True)
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
