"""What `make dev` and `make cluster` share: a fresh log directory, a stop on SIGINT/SIGTERM,
and the ready line (`test_make_dev` waits for it; it comes only once everything is up)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path


def fresh_log_dir(path: Path) -> Path:
    """The directory, with the previous run's logs removed (its database and keys stay)."""
    path.mkdir(exist_ok=True)
    for old in path.glob("*.log"):
        old.unlink()
    return path


def stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def print_ready(gateway_url: str, api_key: str) -> None:
    print(
        f"ready: curl -s -X POST {gateway_url}/v1/sessions/start "
        f"-H 'x-api-key: {api_key}' -H 'content-type: application/json' "
        """-d '{"agentId": "demo"}'""",
        flush=True,
    )
