"""The worker's side of the PocketSphinx child process: streams in, recognition events out.

One engine serves every recognition stream of a job process (and so, under the thread executor,
every session in it), multiplexed by stream id over one pair of pipes. Nothing here blocks the
caller: writes go through a writer thread's queue, and events are read by a reader thread that
hands each one to its stream's callback (which must be thread-safe, e.g. call_soon_threadsafe).

When the child dies, every open stream hears "closed" and the next stream starts a new child,
to which the agent models are sent again.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from agent_worker.engines import agent_lm
from agent_worker.engines.sphinx_protocol import Op, pack

Event = dict[str, Any]
Sink = Callable[[Event], None]
CLOSED: Event = {"type": "closed"}


class _Child:
    """One child process with its two pipe threads."""

    def __init__(self, cache_dir: Path, dispatch: Callable[[_Child, Event], None]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent_worker.engines.sphinx_child", str(cache_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.models_sent: set[str] = set()
        self.models_building: set[str] = set()
        self.ready = False
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._writer = threading.Thread(
            target=self._write, args=(self.proc.stdin,), name="sphinx-writer", daemon=True
        )
        self._reader = threading.Thread(
            target=self._read, args=(self.proc.stdout, dispatch), name="sphinx-reader", daemon=True
        )
        self._writer.start()
        self._reader.start()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, message: bytes) -> None:
        self._outbox.put(message)

    def _write(self, pipe: IO[bytes]) -> None:
        while (message := self._outbox.get()) is not None:
            try:
                pipe.write(message)
                pipe.flush()
            except (BrokenPipeError, ConnectionResetError, ValueError):
                return  # the child is gone: the reader reports it
        with contextlib.suppress(OSError, ValueError):
            pipe.close()

    def _read(self, pipe: IO[bytes], dispatch: Callable[[_Child, Event], None]) -> None:
        for line in pipe:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict):
                if event.get("type") == "ready":
                    self.ready = True
                elif event.get("type") == "lm":
                    self.models_building.discard(str(event.get("key")))
                dispatch(self, event)
        self.proc.wait()  # reaped here, whoever ended it
        dispatch(self, {**CLOSED, "stream": None})

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self._outbox.put(None)  # the writer thread ends too

    def close(self) -> None:
        """Ends the child by closing its stdin (it exits at EOF), killing it if it lingers."""
        self._outbox.put(None)
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class SphinxEngine:
    def __init__(self, cache_dir: Path) -> None:
        self._cache_dir = cache_dir
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._sinks: dict[int, tuple[_Child, Sink]] = {}
        self._ids = itertools.count(1)
        self._models: dict[str, list[str]] = {}
        self._load_error: str | None = None

    def start(self) -> None:
        """Starts the child if none runs; returns at once (the model loads in the background)."""
        with self._lock:
            self._ensure_child_locked()

    @property
    def ready(self) -> bool:
        """Whether the current child has loaded the acoustic model and built every agent model
        sent to it (decodes will not wait behind a load)."""
        child = self._child
        return child is not None and child.ready and not child.models_building and child.alive

    @property
    def pid(self) -> int | None:
        """The current child's process id (the tests stop and kill it)."""
        child = self._child
        return child.proc.pid if child is not None and child.alive else None

    @property
    def load_error(self) -> str | None:
        """Why the last child could not load the model, if it could not."""
        return self._load_error

    def load_model(self, phrases: Sequence[str]) -> str:
        """Registers an agent's phrases and has the child build their model; returns its key.

        Returns at once: the child builds it (tens of milliseconds, once per phrase set, then
        cached on disk) before it reads the audio of streams opened after this call."""
        key = agent_lm.model_key(phrases)
        with self._lock:
            self._models.setdefault(key, list(phrases))
            child = self._ensure_child_locked()
            self._send_model_locked(child, key)
        return key

    def open_stream(self, sink: Sink, *, model: str | None, gate: bool = True) -> EngineStream:
        with self._lock:
            child = self._ensure_child_locked()
            if model is not None and model in self._models:
                self._send_model_locked(child, model)
            stream_id = next(self._ids)
            self._sinks[stream_id] = (child, sink)
            child.send(pack(Op.OPEN, stream_id, json.dumps({"lm": model, "gate": gate}).encode()))
        return EngineStream(self, stream_id, child)

    def kill(self) -> None:
        """Safe from any thread: every open stream then hears "closed", and the next stream
        starts a fresh child (not one that is still dying)."""
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            child.kill()

    def close(self) -> None:
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            child.close()

    def _ensure_child_locked(self) -> _Child:
        if self._child is None or not self._child.alive:
            self._child = _Child(self._cache_dir, self._dispatch)
        return self._child

    def _send_model_locked(self, child: _Child, key: str) -> None:
        if key not in child.models_sent:
            child.models_sent.add(key)
            child.models_building.add(key)
            payload = json.dumps({"key": key, "phrases": self._models[key]}).encode()
            child.send(pack(Op.LOAD_LM, 0, payload))

    def _dispatch(self, child: _Child, event: Event) -> None:
        """Runs on a child's reader thread."""
        stream = event.get("stream")
        if event.get("type") == "error":
            self._load_error = str(event.get("message"))
        elif event.get("type") == "ready":
            self._load_error = None
        if stream:
            with self._lock:
                owner, sink = self._sinks.get(stream, (None, None))
            if sink is not None and owner is child:
                sink(event)
        elif event.get("type") in ("closed", "error"):
            # only this child's streams: a dying child must not end those of its successor
            with self._lock:
                sinks = [sink for owner, sink in self._sinks.values() if owner is child]
            for sink in sinks:
                sink({**event, "type": "closed"})

    def _forget(self, stream_id: int) -> None:
        with self._lock:
            self._sinks.pop(stream_id, None)


class EngineStream:
    """One recognition stream; its methods only queue messages, so they never block."""

    def __init__(self, engine: SphinxEngine, stream_id: int, child: _Child) -> None:
        self._engine = engine
        self.id = stream_id
        self._child = child

    def audio(self, pcm: bytes) -> None:
        if pcm:
            self._child.send(pack(Op.AUDIO, self.id, pcm))

    def flush(self) -> None:
        self._child.send(pack(Op.FLUSH, self.id))

    def close(self) -> None:
        self._engine._forget(self.id)
        self._child.send(pack(Op.CLOSE, self.id))
