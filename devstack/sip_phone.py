"""Real SIP phones for the phone tests and benchmarks: baresip, driven over its ctrl_tcp socket.

A phone has an account (its number), an optional audio file it plays as its microphone once a
call is up, and records what it hears (baresip's sndfile filter writes `*-dec.wav`, the decoded
audio it received). Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from devstack.ports import free_port, free_tcp_udp_port
from devstack.processes import die_with_parent

MODULES = "/usr/lib/baresip/modules"


def free_sip_port() -> int:
    """A port for baresip's UDP and TCP listeners whose next port is free for TCP too: baresip
    also binds SIP/TLS on sip_listen's port + 1, and fails to start when that one is taken."""
    for _ in range(50):
        port = free_tcp_udp_port()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free SIP port pair on 127.0.0.1")


@dataclass
class Baresip:
    number: str
    play: Path | None = None
    auto_answer: bool = False
    auth: tuple[str, str] | None = None
    sip_port: int = field(default_factory=free_sip_port)
    ctrl_port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="voicegw-phone-")))
    events: list[dict[str, Any]] = field(default_factory=list)
    _proc: subprocess.Popen[bytes] | None = None
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _task: asyncio.Task[None] | None = None
    _responses: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    @property
    def recordings(self) -> Path:
        return self.workdir / "recordings"

    def _config(self) -> str:
        source = f"aufile,{self.play or self._silence()}"
        return "\n".join(
            [
                "poll_method epoll",
                f"sip_listen 127.0.0.1:{self.sip_port}",
                "net_interface 127.0.0.1",
                f"audio_source {source}",
                # No sound card: the player is a bridge to nowhere; the sndfile filter records.
                "audio_player aubridge,nowhere",
                "audio_alert aubridge,nowhere",
                "audio_srate 8000",
                "audio_channels 1",
                f"module_path {MODULES}",
                "module g711.so",
                "module aufile.so",
                "module aubridge.so",
                "module sndfile.so",
                f"snd_path {self.recordings}",
                "module_app account.so",
                "module_app menu.so",
                "module_app ctrl_tcp.so",
                f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
                "",
            ]
        )

    def _silence(self, seconds: int = 120) -> Path:
        """A phone with nothing to say still needs a microphone."""
        path = self.workdir / "silence.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"\0\0" * 8000 * seconds)
        return path

    def _account(self) -> str:
        params = ["regint=0"]
        if self.auto_answer:
            params.append("answermode=auto")
        if self.auth:
            params += [f"auth_user={self.auth[0]}", f"auth_pass={self.auth[1]}"]
        return f"<sip:{self.number}@127.0.0.1>;" + ";".join(params) + "\n"

    async def start(self, within: float = 15.0) -> None:
        self._proc = self._spawn()
        deadline = time.monotonic() + within
        while True:
            try:
                self._reader, self._writer = await asyncio.open_connection(
                    "127.0.0.1", self.ctrl_port
                )
                break
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    tail = self.log_text()[-2000:]
                    raise RuntimeError(f"baresip did not start:\n{tail}") from None
                await asyncio.sleep(0.1)
        self._task = asyncio.create_task(self._read(), name=f"baresip:{self.number}")

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.recordings.mkdir(parents=True, exist_ok=True)
        (self.workdir / "config").write_text(self._config())
        (self.workdir / "accounts").write_text(self._account())
        with open(self.workdir / "baresip.log", "ab") as log:
            return subprocess.Popen(
                ["baresip", "-f", str(self.workdir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )

    def log_text(self) -> str:
        path = self.workdir / "baresip.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def command(self, command: str, params: str = "") -> dict[str, Any]:
        assert self._writer is not None
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()
        return await asyncio.wait_for(self._responses.get(), 10)

    async def dial(self, uri: str) -> None:
        await self.command("dial", uri)

    async def hangup(self) -> None:
        await self.command("hangup")

    def saw(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == event_type]

    async def wait_for(self, event_type: str, within: float) -> dict[str, Any]:
        return await self.wait_for_any((event_type,), within)

    async def wait_for_any(self, event_types: tuple[str, ...], within: float) -> dict[str, Any]:
        """The newest event of one of `event_types`, waiting for one up to `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            seen = [e for e in self.events if e.get("type") in event_types]
            if seen:
                return seen[-1]
            if time.monotonic() > deadline:
                types = [e.get("type") for e in self.events]
                raise AssertionError(f"phone {self.number}: no {event_types} in {within}s: {types}")
            await asyncio.sleep(0.05)

    def heard(self) -> np.ndarray:
        """What the phone received in its last call, as 16-bit samples at 8 kHz. Read it after
        the call closed: the recorder completes the file's header only then."""
        files = sorted(self.recordings.glob("*-dec.wav"))
        if not files:
            return np.zeros(0, dtype=np.int16)
        with wave.open(str(files[-1]), "rb") as w:
            return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)

    async def _read(self) -> None:
        assert self._reader is not None
        buffer = b""
        while True:
            chunk = await self._reader.read(65536)
            if not chunk:
                return
            buffer += chunk
            while b":" in buffer:
                size, _, rest = buffer.partition(b":")
                if len(rest) < int(size) + 1:
                    break
                message = json.loads(rest[: int(size)])
                buffer = rest[int(size) + 1 :]
                if message.get("response"):
                    self._responses.put_nowait(message)
                elif message.get("event"):
                    message["at"] = time.monotonic()
                    self.events.append(message)

    async def stop(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.command("quit"), 2)
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        shutil.rmtree(self.workdir, ignore_errors=True)


def loud_spans(
    samples: np.ndarray, rate: int = 8000, threshold: float = 300.0
) -> list[tuple[float, float]]:
    """(start, end) seconds of stretches louder than `threshold` (RMS over 50 ms), joining gaps
    under 0.6 s: the sentences a listener would hear."""
    step = rate // 20
    spans: list[tuple[float, float]] = []
    for i in range(0, len(samples) - step + 1, step):
        chunk = samples[i : i + step].astype(np.float64)
        if float(np.sqrt(np.mean(chunk**2))) < threshold:
            continue
        t = i / rate
        if spans and t - spans[-1][1] < 0.6:
            spans[-1] = (spans[-1][0], t + step / rate)
        else:
            spans.append((t, t + step / rate))
    return spans
