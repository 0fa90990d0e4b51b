"""Sessions of one worker process share one model, even when they start at the same moment."""

from __future__ import annotations

import threading
import time

import pytest

from agent_worker.process_shared import once_per_process

pytestmark = pytest.mark.unit


def test_job_threads_prewarming_together_build_the_model_once() -> None:
    built: list[object] = []

    def build() -> object:
        time.sleep(0.05)  # a slow load: the other threads arrive meanwhile
        model = object()
        built.append(model)
        return model

    got: list[object] = []
    threads = [
        threading.Thread(target=lambda: got.append(once_per_process("model-a", build)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1
    assert got == built * 8
    assert once_per_process("model-b", object) is not built[0]  # another key, another model
