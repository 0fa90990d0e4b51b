"""The worker's prometheus-client multiprocess directory. Standard library only: it must be set up
before anything imports prometheus_client, which picks its value store when first imported (in
the main process and in the forkserver that starts the job processes, which inherits the
environment)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(configured: Path | None) -> tuple[Path, bool]:
    """Exports the directory; True when it is a temporary one, ours to delete at exit.
    livekit-agents empties it when the worker starts (stale files of an earlier run go)."""
    if configured is not None:
        configured.mkdir(parents=True, exist_ok=True)
        path, owned = configured, False
    else:
        path, owned = Path(tempfile.mkdtemp(prefix="voicegw-worker-metrics-")), True
    os.environ[MULTIPROC_ENV] = str(path)
    return path, owned


def remove_multiprocess_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
