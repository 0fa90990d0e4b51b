"""Child processes of the stack: logged to a file, and ended by the kernel if the stack dies.

A Ctrl-C or SIGTERM stops the stack in order (Stack.stop). A SIGKILL of the parent runs no code
of ours, so each child asks Linux for SIGKILL when its parent dies (PR_SET_PDEATHSIG). The
worker's own processes (livekit-agents' forkserver, job processes, their STT helpers) end when
their pipes to the killed worker close; tests/e2e/test_make_dev.py checks that nothing of a run
outlives it. Linux sends the signal when the *thread* that started the child ends: start children
from a thread that lives as long as they should (the main thread, or an executor's).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def die_with_parent() -> Callable[[], None]:
    """A preexec_fn: the child gets SIGKILL when this process (the one starting it) dies."""
    parent = os.getpid()

    def preexec() -> None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the request took hold
            os._exit(1)

    return preexec


@dataclass
class LoggedProcess:
    """A process whose output goes to `log_path`; `log_text()` reads only what this run wrote,
    so a check for a line can never be answered by an earlier run's log."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    log_offset: int = field(default=0)

    @classmethod
    def start(
        cls, name: str, argv: list[str], *, log_path: Path, env: dict[str, str] | None = None
    ) -> Self:
        offset = log_path.stat().st_size if log_path.exists() else 0
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                argv,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        return cls(name, proc, log_path, offset)

    def log_text(self) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(self.log_offset)
            return f.read().decode(errors="replace")
