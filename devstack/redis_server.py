"""A throwaway Redis on 127.0.0.1, from the Debian package: LiveKit and its SIP service share it.

Nothing is persisted (no RDB, no AOF), so `restart()` brings back an empty Redis, which is what a
production Redis that lost its data looks like to LiveKit and to the gateway's reconciler.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.livekit_server import stop_process
from devstack.ports import free_port
from devstack.processes import LoggedProcess


@dataclass
class RedisServer:
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    _proc: subprocess.Popen[bytes] | None = None
    _dir: Path | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server not installed: run `make setup`")
        self._dir = self._dir or Path(tempfile.mkdtemp(prefix="voicegw-redis-"))
        log_path = self.log_path or self._dir / "redis.log"
        self._proc = LoggedProcess.start(
            "redis-server",
            [
                binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self._dir),
            ],
            log_path=log_path,
        ).proc  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self._answers_ping():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on {self.address}")
            time.sleep(0.05)

    def restart(self) -> None:
        """Stops Redis and starts it again on the same port, empty."""
        self._stop_process()
        self.start()

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _stop_process(self) -> None:
        stop_process(self._proc)
        self._proc = None

    def stop(self) -> None:
        self._stop_process()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
