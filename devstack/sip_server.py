"""Runs LiveKit's SIP service (`livekit-sip`, pinned by scripts/setup.sh) on loopback.

`sip_service_config()` is the one place its config is written, for `make dev`, the tests and
deploy/ alike. On loopback it must be told so three times (listen_ip, nat_1_to_1_ip and
use_external_ip), or it announces the machine's first non-loopback address in its SDP.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from devstack.livekit_server import stop_process, tool_binary
from devstack.ports import free_port, free_tcp_udp_port
from devstack.processes import LoggedProcess

RTP_PORTS = 200


def livekit_sip_binary() -> str:
    return tool_binary("livekit-sip", "LIVEKIT_SIP_BIN")


def sip_service_config(
    *,
    api_key: str,
    api_secret: str,
    ws_url: str,
    redis_address: str,
    sip_port: int,
    rtp_start: int,
    ip: str = "127.0.0.1",
    log_level: str = "info",
) -> dict[str, object]:
    return {
        "api_key": api_key,
        "api_secret": api_secret,
        "ws_url": ws_url,
        "redis": {"address": redis_address},
        "sip_port": sip_port,
        "rtp_port": f"{rtp_start}-{rtp_start + RTP_PORTS - 1}",
        "listen_ip": ip,
        "nat_1_to_1_ip": ip,
        "use_external_ip": False,
        # The default (0.9) refuses new calls while the machine is busy; on a shared development
        # host that is most of the time. Production sets its own.
        "max_cpu_utilization": 1.0,
        "logging": {"level": log_level},
    }


@dataclass
class SipServer:
    """Needs the LiveKit server it serves and the Redis both share."""

    api_key: str
    api_secret: str
    ws_url: str
    redis_address: str
    port: int = field(default_factory=free_tcp_udp_port)
    log_path: Path | None = None
    _proc: subprocess.Popen[bytes] | None = None
    _dir: Path | None = None

    @property
    def address(self) -> str:
        """Where phones send their INVITEs: `sip:<number>@<address>`."""
        return f"127.0.0.1:{self.port}"

    def uri(self, number: str) -> str:
        return f"sip:{number}@{self.address}"

    def start(self, timeout: float = 30.0) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="voicegw-sip-"))
        config = sip_service_config(
            api_key=self.api_key,
            api_secret=self.api_secret,
            ws_url=self.ws_url,
            redis_address=self.redis_address,
            sip_port=self.port,
            rtp_start=free_port(2),
        )
        path = self._dir / "sip.yaml"
        path.write_text(yaml.safe_dump(config))
        log_path = self.log_path or self._dir / "sip.log"
        self._proc = LoggedProcess.start(
            "livekit-sip", [livekit_sip_binary(), "--config", str(path)], log_path=log_path
        ).proc
        deadline = time.monotonic() + timeout
        while not self.answers_options():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"livekit-sip did not start:\n{tail}")
            time.sleep(0.1)

    def answers_options(self) -> bool:
        """Ready means it answers a SIP OPTIONS, as a carrier's health check would ask."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(0.5)
            here = f"127.0.0.1:{s.getsockname()[1]}"
            tag = secrets.token_hex(6)
            message = (
                f"OPTIONS sip:{self.address} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {here};branch=z9hG4bK{tag}\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:probe@{here}>;tag={tag}\r\n"
                f"To: <sip:{self.address}>\r\n"
                f"Call-ID: {tag}@{here}\r\n"
                "CSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n"
            )
            try:
                s.sendto(message.encode(), ("127.0.0.1", self.port))
                return s.recv(2048).startswith(b"SIP/2.0 ")
            except OSError:
                return False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def stop(self) -> None:
        stop_process(self._proc)
        self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
