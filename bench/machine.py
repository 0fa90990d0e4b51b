"""What the numbers were measured on."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata

import psutil  # type: ignore[import-untyped]

from devstack.livekit_server import livekit_server_binary


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model() -> str:
    for line in _run(["lscpu"]).splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info() -> dict[str, str]:
    version = _run([livekit_server_binary(), "--version"]).rsplit(" ", 1)[-1]
    return {
        "nproc": _run(["nproc"]) or str(len(os.sched_getaffinity(0))),
        "cpu_model": cpu_model(),
        "memory_gb": f"{psutil.virtual_memory().total / 1024**3:.1f}",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "livekit_server": version or "unknown",
        "livekit_agents": metadata.version("livekit-agents"),
        "livekit_rtc": metadata.version("livekit"),
        "aiohttp": metadata.version("aiohttp"),
    }


def describe(info: dict[str, str]) -> str:
    return (
        f"{info['nproc']} CPUs ({info['cpu_model']}), {info['memory_gb']} GB RAM, "
        f"Linux {info['kernel']}, Python {info['python']}, "
        f"livekit-server {info['livekit_server']}, "
        f"livekit-agents {info['livekit_agents']}, livekit (rtc) {info['livekit_rtc']}"
    )
