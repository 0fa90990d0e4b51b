"""Runs the pinned livekit-server on loopback with a generated config (DESIGN §5).

Shared by `make dev`, the end-to-end tests and the benchmarks: all three run LiveKit alike.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from devstack.ports import free_port, free_tcp_udp_port
from devstack.processes import LoggedProcess

REPO = Path(__file__).resolve().parent.parent


def tool_binary(name: str, env_var: str) -> str:
    """`env_var` wins; else the binary scripts/setup.sh built (recorded in .venv/<name>-path);
    else one on PATH."""
    explicit = os.environ.get(env_var)
    if explicit:
        return explicit
    recorded = REPO / ".venv" / f"{name}-path"
    if recorded.exists():
        return recorded.read_text().strip()
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(f"{name} not found: run `make setup` or set {env_var}")


def livekit_server_binary() -> str:
    return tool_binary("livekit-server", "LIVEKIT_SERVER_BIN")


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not gone within `timeout` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class LiveKitServer:
    api_key: str = "devkey"
    api_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    webhook_urls: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    # With Redis, LiveKit keeps rooms, SIP trunks and dispatch rules there, and its SIP service
    # (devstack/sip_server.py) can reach it; without, it runs alone and in memory.
    redis_address: str | None = None
    _proc: subprocess.Popen[bytes] | None = None
    _workdir: Path | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, object]:
        rtc_port = free_tcp_udp_port()
        conf: dict[str, object] = {
            "port": self.port,
            "bind_addresses": ["127.0.0.1"],
            "rtc": {
                "tcp_port": rtc_port,
                "udp_port": rtc_port,
                "use_external_ip": False,
                "node_ip": "127.0.0.1",
                "enable_loopback_candidate": True,
                "ips": {"includes": ["127.0.0.1/32"]},
                # An unused loopback port: no client is ever told about a public STUN server.
                "stun_servers": [f"127.0.0.1:{free_port(2)}"],
            },
            "turn": {"enabled": False},
            "keys": {self.api_key: self.api_secret},
            "logging": {"level": "info", "json": True},
            # Rooms exist only when the gateway creates them: a late agent joining a room that
            # was just ended must not bring it back.
            "room": {"auto_create": False, "empty_timeout": 30, "departure_timeout": 5},
        }
        if self.redis_address:
            conf["redis"] = {"address": self.redis_address}
        if self.webhook_urls:
            conf["webhook"] = {"api_key": self.api_key, "urls": self.webhook_urls}
        return conf

    def start(self, timeout: float = 30.0) -> None:
        self._workdir = Path(tempfile.mkdtemp(prefix="voicegw-livekit-"))
        config_path = self._workdir / "livekit.yaml"
        config_path.write_text(yaml.safe_dump(self.config()))
        log_path = self.log_path or self._workdir / "livekit.log"
        self._proc = LoggedProcess.start(
            "livekit-server",
            [livekit_server_binary(), "--config", str(config_path)],
            log_path=log_path,
        ).proc
        self._wait_ready(timeout, log_path)

    def _wait_ready(self, timeout: float, log_path: Path) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"livekit-server exited with {self._proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(self.http_url, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"livekit-server not ready on {self.http_url} after {timeout}s")

    def stop(self) -> None:
        if self._proc is None:
            return
        stop_process(self._proc)
        self._proc = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
