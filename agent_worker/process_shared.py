"""What every session of one worker process shares: built once per process, whatever the executor.

livekit-agents runs the setup function (our prewarm) once per job *process*, and under the thread
executor every job thread counts as one: each session there built its own Silero model and
started its own PocketSphinx child (~100 MB PSS each, the bench's density table), which is the
opposite of why one would host many sessions in one process. Both are safe to share: Silero's
ONNX session runs from any thread, and the SphinxEngine multiplexes streams from any thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_built: dict[tuple[int, Hashable], Any] = {}


def once_per_process(key: Hashable, build: Callable[[], T]) -> T:
    """`build()`'s result for `key`, built by the first caller in this process (the pid is part
    of the key: a forked child must not inherit its parent's child processes or threads)."""
    full_key = (os.getpid(), key)
    with _lock:
        if full_key not in _built:
            _built[full_key] = build()
        result: T = _built[full_key]
        return result
