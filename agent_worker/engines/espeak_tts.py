"""Offline text-to-speech through the `espeak-ng` binary.

espeak-ng is tiny, needs no model download and no network, so a session can speak with nothing but
a Debian package installed. Its voice is robotic; it is for development, tests and air-gapped
deployments, and is swappable with any vendor TTS through the same livekit-agents interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
from dataclasses import dataclass
from typing import Never

import numpy as np
from livekit import rtc
from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    APIConnectionError,
    APIConnectOptions,
    APIError,
    tts,
    utils,
)

DEFAULT_SAMPLE_RATE = 22050
"""What espeak-ng's own voices produce; the rate is still read from each WAV header."""

_READ_SIZE = 8192
_MAX_HEADER_BYTES = 64 * 1024
_VOICE_RE = re.compile(r"^[A-Za-z0-9_+.][A-Za-z0-9_+./-]*$")
_PCM = 1
_EXTENSIBLE = 0xFFFE


@dataclass(frozen=True)
class WavFormat:
    sample_rate: int
    num_channels: int
    bits_per_sample: int


class WavStreamReader:
    """Splits a WAV byte stream into its format and PCM payload as the bytes arrive.

    espeak-ng writing to a pipe cannot seek back to fix the header, so the RIFF and data sizes
    are placeholders (0x7ffff000): the payload is taken to run until EOF or that size, whichever
    comes first. Parsing incrementally lets the first audio go out before synthesis finishes.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._riff_checked = False
        self._fmt: WavFormat | None = None
        self._data_left: int | None = None

    @property
    def format(self) -> WavFormat | None:
        return self._fmt if self._data_left is not None else None

    def feed(self, data: bytes) -> bytes:
        """Raises ValueError on anything that is not 16-bit-capable PCM WAV."""
        if self._data_left is not None:
            return self._take(bytes(data))
        self._buf += data
        if not self._parse_header():
            if len(self._buf) > _MAX_HEADER_BYTES:
                raise ValueError("no data chunk within the first 64 KiB")
            return b""
        rest = bytes(self._buf)
        self._buf.clear()
        return self._take(rest)

    def _take(self, data: bytes) -> bytes:
        assert self._data_left is not None
        out = data[: self._data_left]
        self._data_left -= len(out)
        return out

    def _parse_header(self) -> bool:
        buf = self._buf
        if not self._riff_checked:
            if len(buf) < 12:
                return False
            if buf[0:4] != b"RIFF" or buf[8:12] != b"WAVE":
                raise ValueError("not a RIFF/WAVE stream")
            del buf[:12]
            self._riff_checked = True
        while len(buf) >= 8:
            chunk_id = bytes(buf[0:4])
            (size,) = struct.unpack_from("<I", buf, 4)
            if chunk_id == b"data":
                if self._fmt is None:
                    raise ValueError("data chunk before fmt chunk")
                del buf[:8]
                self._data_left = size
                return True
            padded = size + (size & 1)
            if len(buf) < 8 + padded:
                return False
            if chunk_id == b"fmt ":
                self._fmt = _parse_fmt(bytes(buf[8 : 8 + size]))
            del buf[: 8 + padded]
        return False


def _parse_fmt(body: bytes) -> WavFormat:
    if len(body) < 16:
        raise ValueError("fmt chunk too short")
    audio_format, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
    if audio_format not in (_PCM, _EXTENSIBLE) or bits != 16:
        raise ValueError(f"unsupported WAV encoding (format {audio_format}, {bits} bits)")
    if channels < 1 or rate < 1:
        raise ValueError(f"invalid WAV format ({channels} channels at {rate} Hz)")
    return WavFormat(sample_rate=rate, num_channels=channels, bits_per_sample=bits)


class PcmNormalizer:
    """Turns 16-bit PCM of any rate and channel count into mono at the rate the TTS reported.

    The pipeline trusts `TTS.sample_rate`, so audio at any other rate (an mbrola voice, another
    espeak build) must be resampled rather than passed through mislabelled.
    """

    def __init__(self, fmt: WavFormat, out_rate: int) -> None:
        self._channels = fmt.num_channels
        self._frame_bytes = 2 * fmt.num_channels
        self._carry = b""
        self._resampler = (
            rtc.AudioResampler(fmt.sample_rate, out_rate, quality=rtc.AudioResamplerQuality.HIGH)
            if fmt.sample_rate != out_rate
            else None
        )

    def push(self, data: bytes) -> bytes:
        data = self._carry + data
        usable = len(data) - len(data) % self._frame_bytes
        self._carry = data[usable:]
        pcm = data[:usable]
        if not pcm:
            return b""
        if self._channels > 1:
            samples = np.frombuffer(pcm, dtype="<i2").reshape(-1, self._channels)
            pcm = samples.mean(axis=1).round().astype("<i2").tobytes()
        if self._resampler is None:
            return pcm
        return b"".join(f.data.tobytes() for f in self._resampler.push(bytearray(pcm)))

    def flush(self) -> bytes:
        if self._resampler is None:
            return b""
        return b"".join(f.data.tobytes() for f in self._resampler.flush())


class EspeakTTS(tts.TTS[Never]):
    """Non-streaming: AgentSession wraps it in a sentence-splitting tts.StreamAdapter."""

    def __init__(
        self,
        *,
        voice: str = "en-us",
        words_per_minute: int = 175,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        binary: str = "espeak-ng",
    ) -> None:
        if not _VOICE_RE.match(voice):
            raise ValueError(f"invalid espeak-ng voice name {voice!r}")
        if not 80 <= words_per_minute <= 450:
            raise ValueError("words_per_minute must be between 80 and 450 (espeak-ng's range)")
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=sample_rate,
            num_channels=1,
        )
        self._voice = voice
        self._wpm = words_per_minute
        self._binary = binary

    @property
    def model(self) -> str:
        return self._voice

    @property
    def provider(self) -> str:
        return "espeak-ng"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> EspeakChunkedStream:
        return EspeakChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def command(self) -> list[str]:
        """Text goes in on stdin so it can never be read as an option or reach a shell."""
        return [self._binary, "-v", self._voice, "-s", str(self._wpm), "--stdin", "--stdout"]


class EspeakChunkedStream(tts.ChunkedStream):
    def __init__(self, *, tts: EspeakTTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._espeak = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=self._espeak.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
        )
        cmd = self._espeak.command()
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise APIConnectionError(f"{cmd[0]} not found on PATH", retryable=False) from None
        except OSError as e:
            raise APIConnectionError(
                f"could not start {cmd[0]}: {e.strerror}", retryable=False
            ) from None

        assert proc.stdin and proc.stdout and proc.stderr
        stderr_task = asyncio.create_task(proc.stderr.read())
        try:
            try:
                proc.stdin.write(self.input_text.encode())
                await proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass  # an early exit (bad voice) closed the pipe; the exit status says why
            finally:
                proc.stdin.close()

            wav = WavStreamReader()
            pcm: PcmNormalizer | None = None
            while chunk := await proc.stdout.read(_READ_SIZE):
                payload = wav.feed(chunk)
                fmt = wav.format
                if fmt is None:
                    continue
                if pcm is None:
                    pcm = PcmNormalizer(fmt, self._espeak.sample_rate)
                if out := pcm.push(payload):
                    output_emitter.push(out)

            rc = await proc.wait()
            stderr = (await stderr_task).decode(errors="replace").strip()
            if rc != 0:
                # killed by a signal may be transient; a bad voice or option never is
                raise APIError(
                    f"{cmd[0]} exited with status {rc}: {stderr[-300:]}", retryable=rc < 0
                )
            if pcm is None:
                raise APIError(f"{cmd[0]} produced no WAV audio", retryable=False)
            if tail := pcm.flush():
                output_emitter.push(tail)
        except ValueError as e:
            raise APIError(f"unreadable WAV from {cmd[0]}: {e}", retryable=False) from None
        finally:
            # an interrupted reply cancels this task: never leave an orphaned synthesizer
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            await utils.aio.cancel_and_wait(stderr_task)
