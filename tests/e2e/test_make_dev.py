"""`make dev` tells the truth and cleans up: its ready line means this run's worker takes calls,
each run has fresh logs, the page's key is reused, and no process of a run outlives it, even when
the parent is SIGKILLed with a call in progress. Runs `python -m devstack` (what `make dev` runs)
twice in one directory, beside the shared stack."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from devstack.ports import free_port
from devstack.stack import WORKER_READY_MARK
from devstack.voice_client import VoiceClient

pytestmark = [pytest.mark.e2e, pytest.mark.one_store]

READY_WITHIN_S = 240
GONE_WITHIN_S = 30


class DevRun:
    """One `make dev`, its output lines read as they come."""

    def __init__(self, data_dir: Path, port: int, api_key: str) -> None:
        env = {
            **os.environ,
            "VOICEGW_PORT": str(port),
            "VOICEGW_DEV_DIR": str(data_dir),
            "VOICEGW_DEV_API_KEY": api_key,
        }
        self.url = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("ready:"):
                self._ready.set()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_WITHIN_S
        while not self._ready.wait(0.5):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("make dev never got ready:\n" + "".join(self.lines[-40:]))

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def get(self, path: str) -> tuple[int, bytes]:
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            return resp.status, resp.read()


def assert_all_gone(procs: list[psutil.Process]) -> None:
    _, alive = psutil.wait_procs(procs, timeout=GONE_WITHIN_S)
    survivors = [(p.pid, " ".join(p.cmdline()[:3])) for p in alive if _running(p)]
    for p in alive:
        p.kill()  # leave the machine clean even when the assertion fails
    assert not survivors, f"processes outlived make dev: {survivors}"


def _running(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def runs() -> Iterator[list[DevRun]]:
    started: list[DevRun] = []
    yield started
    for run in started:
        if run.proc.poll() is None:
            procs = run.descendants()
            run.proc.kill()
            run.proc.wait()
            assert_all_gone(procs)


def check_ready(run: DevRun, data_dir: Path) -> bytes:
    """What the ready line promises; answers the page's config document."""
    run.wait_ready()
    # The ready line came after this run's worker registered: its (fresh) log says so already,
    # exactly once.
    [worker_log] = data_dir.glob("worker*.log")
    assert worker_log.read_text().count(WORKER_READY_MARK) == 1
    status, page = run.get("/")
    assert status == 200 and b'<div id="root">' in page
    assert any(line.startswith(f"page: open {run.url}/") for line in run.lines)
    config = run.get("/config.json")[1]
    assert b'"apiKey": "vgw_pk_' in config
    return config


async def start_call(run: DevRun, api_key: str) -> dict[str, Any]:
    request = urllib.request.Request(
        run.url + "/v1/sessions/start",
        data=json.dumps({"agentId": "demo"}).encode(),
        headers={"x-api-key": api_key, "content-type": "application/json"},
    )

    def call() -> dict[str, Any]:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]

    return await asyncio.to_thread(call)


async def test_make_dev_is_ready_when_it_says_and_leaves_nothing_behind(
    tmp_path: Path, runs: list[DevRun]
) -> None:
    api_key = "vgw_sk_" + "d" * 43
    port = free_port()

    first = DevRun(tmp_path, port, api_key)
    runs.append(first)
    config = await asyncio.to_thread(check_ready, first, tmp_path)

    # A call started right after the ready line gets an agent.
    session = await start_call(first, api_key)
    client = VoiceClient()
    try:
        await client.join(session["livekitUrl"], session["userToken"])
        await client.wait_for_agent(within=60)
        # SIGKILL the parent mid-call: LiveKit, the gateway, the worker and its job processes
        # (one of them running this call) all go with it.
        procs = first.descendants()
        names = " ".join(" ".join(p.cmdline()) for p in procs)
        assert "livekit-server" in names and "voice_gateway" in names and "agent_worker" in names
        assert len(procs) > 3, "the worker's own processes should be there too"
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        await asyncio.to_thread(assert_all_gone, procs)
    finally:
        await client.leave()

    # A second run in the same directory: fresh logs, the page's key reused, a clean Ctrl-C.
    second = DevRun(tmp_path, port, api_key)
    runs.append(second)
    assert await asyncio.to_thread(check_ready, second, tmp_path) == config
    procs = second.descendants()
    second.proc.send_signal(signal.SIGINT)
    assert await asyncio.to_thread(second.proc.wait, 60) == 0
    await asyncio.to_thread(assert_all_gone, procs)
