"""Measures 2-4: agent ready, greeting first audio and voice-to-voice, one session at a time.

Each session is what an app does: /start, join the room with the returned token as a real
livekit.rtc client (devstack.VoiceClient), listen, maybe speak, /end. Every other greeting
session starts with "waitForAgent": true, so its answer time is measured side by side with
/start + agent ready of the sessions between, in the same run and at the same pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.gateway_api import GatewayApi, Started
from bench.pipeline_log import STAGES, answer_breakdown, read_metrics
from bench.stats import Summary, summarize
from devstack.voice_client import VoiceClient

QUESTION = "what are your opening hours"
SHORT_GREETING = "Hello."  # voice-to-voice sessions only: less time spent waiting to speak


@dataclass
class SessionSample:
    room: str
    start_ms: float
    agent_ready_ms: float | None = None  # LiveKit's join stamp of the agent minus the answer
    agent_seen_ms: float | None = None  # when the client saw the agent, minus the answer
    greeting_ms: float | None = None  # first loud greeting frame minus the client's join
    error: str | None = None
    # A "waitForAgent": true start: its start_ms is the request to the answer (the agent in the
    # room), and whether the client found the agent there as it joined.
    waited: bool = False
    agent_in_room_at_join: bool | None = None


@dataclass
class VoiceSample:
    room: str
    voice_to_voice_ms: float | None = None
    interim_caption_ms: float | None = None  # first live caption of the question - its start
    heard: str = ""
    stages_ms: dict[str, float] | None = None
    error: str | None = None


@dataclass
class SessionsResult:
    sessions: list[SessionSample] = field(default_factory=list)
    voice: list[VoiceSample] = field(default_factory=list)

    @property
    def waits(self) -> list[SessionSample]:
        return [s for s in self.sessions if s.waited]

    @property
    def wait_for_agent(self) -> Summary | None:
        """Request to answer of the waitForAgent starts (the agent is in the room by then)."""
        return summarize([s.start_ms for s in self.waits if not s.error])

    @property
    def wait_overhead(self) -> Summary | None:
        """How long after the agent's LiveKit join stamp a waitForAgent start answered."""
        return summarize([-s.agent_ready_ms for s in self.waits if s.agent_ready_ms is not None])

    @property
    def start_plus_agent_ready(self) -> Summary | None:
        """Request to agent in the room without waitForAgent: /start, then LiveKit's join stamp."""
        return summarize(
            [
                s.start_ms + s.agent_ready_ms
                for s in self.sessions
                if not s.waited and s.agent_ready_ms is not None and not s.error
            ]
        )

    def summary(self, name: str) -> Summary | None:
        """Over the sessions that did not wait: a waited start's answer already holds the agent."""
        return summarize(
            [v for s in self.sessions if not s.waited and (v := getattr(s, name)) is not None]
        )

    @property
    def voice_to_voice(self) -> Summary | None:
        return summarize([v.voice_to_voice_ms for v in self.voice if v.voice_to_voice_ms])

    @property
    def interim_caption(self) -> Summary | None:
        return summarize([v.interim_caption_ms for v in self.voice if v.interim_caption_ms])

    def stage(self, name: str) -> Summary | None:
        return summarize([v.stages_ms[name] for v in self.voice if v.stages_ms])

    def as_dict(self) -> dict[str, Any]:
        summaries = {
            name: (s.as_dict() if (s := self.summary(name)) else None)
            for name in ("start_ms", "agent_ready_ms", "agent_seen_ms", "greeting_ms")
        }
        v2v = self.voice_to_voice
        summaries["voice_to_voice_ms"] = v2v.as_dict() if v2v else None
        interim = self.interim_caption
        summaries["interim_caption_ms"] = interim.as_dict() if interim else None
        for name in STAGES:
            s = self.stage(name)
            summaries[f"stage_{name}_ms"] = s.as_dict() if s else None
        wait, direct = self.wait_for_agent, self.start_plus_agent_ready
        overhead = self.wait_overhead
        summaries["wait_for_agent_ms"] = wait.as_dict() if wait else None
        summaries["wait_for_agent_after_join_ms"] = overhead.as_dict() if overhead else None
        summaries["start_plus_agent_ready_ms"] = direct.as_dict() if direct else None
        return {
            "summaries": summaries,
            "sessions": [asdict(s) for s in self.sessions],
            "voice": [asdict(v) for v in self.voice],
        }


def make_question_wav(directory: Path) -> Path:
    """The spoken question, as the e2e tests make it: espeak-ng, then 48 kHz mono with sox."""
    raw, wav = directory / "question-raw.wav", directory / "question.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), QUESTION],
        check=True,
    )
    subprocess.run(["sox", str(raw), "-r", "48000", "-c", "1", str(wav)], check=True)
    return wav


async def agent_ready(client: VoiceClient, started: Started, within: float) -> tuple[float, float]:
    """(LiveKit-stamped, client-seen) ms from the /start answer to the agent in the room."""
    agent = await client.wait_for_agent(within)
    seen = (client.joined_at[agent] - started.answered_mono) * 1000
    joined = client.room.remote_participants[agent].joined_at
    stamped = (joined.timestamp() - started.answered_wall) * 1000 if joined else seen
    return stamped, seen


async def run_greeting_sessions(
    api: GatewayApi, count: int, *, gap_s: float, time_cap_s: float
) -> list[SessionSample]:
    samples: list[SessionSample] = []
    deadline = time.monotonic() + time_cap_s
    for i in range(count):
        if time.monotonic() > deadline:
            break
        samples.append(await _greeting_session(api, i, wait_for_agent=i % 2 == 1))
        await asyncio.sleep(gap_s)
    return samples


async def _greeting_session(
    api: GatewayApi, index: int, *, wait_for_agent: bool = False
) -> SessionSample:
    body: dict[str, Any] = {"agentId": "demo", "userIdentity": f"bench-caller-{index}"}
    if wait_for_agent:
        body["waitForAgent"] = True
    started = await api.start(**body)
    sample = SessionSample(room=started.room_name, start_ms=started.start_ms, waited=wait_for_agent)
    client = VoiceClient()
    try:
        await client.join(started.livekit_url, started.user_token)
        if wait_for_agent:
            sample.agent_in_room_at_join = bool(client.agent_identities)
        sample.agent_ready_ms, sample.agent_seen_ms = await agent_ready(client, started, 15)
        await client.wait_for(
            lambda: (v := client.agent_voice()) is not None and v.first_loud_at is not None,
            15,
            "the greeting to be audible",
        )
        voice = client.agent_voice()
        assert voice is not None and voice.first_loud_at is not None
        sample.greeting_ms = (voice.first_loud_at - client.connected_at) * 1000
    except (AssertionError, TimeoutError) as exc:
        sample.error = str(exc)
    finally:
        await _finish(api, client, started.room_name)
    return sample


async def run_voice_sessions(
    api: GatewayApi, count: int, wav: Path, worker_log: Path, *, time_cap_s: float
) -> list[VoiceSample]:
    samples: list[VoiceSample] = []
    deadline = time.monotonic() + time_cap_s
    for i in range(count):
        if time.monotonic() > deadline:
            break
        samples.append(await _voice_session(api, i, wav))
    await asyncio.sleep(0.5)  # the last metrics lines reach the log file
    metrics = read_metrics(worker_log)
    for sample in samples:
        sample.stages_ms = answer_breakdown(metrics.get(sample.room, []))
    return samples


async def _voice_session(api: GatewayApi, index: int, wav: Path) -> VoiceSample:
    started = await api.start(
        agentId="demo",
        userIdentity=f"bench-speaker-{index}",
        agentConfig={"greeting": SHORT_GREETING},
    )
    sample = VoiceSample(room=started.room_name)
    client = VoiceClient()
    try:
        await client.join(started.livekit_url, started.user_token)
        agent = await client.wait_for_agent(15)
        await client.wait_for(lambda: client.captions_of(agent), 15, "the greeting caption")
        voice = client.agent_voice()
        assert voice is not None, "no agent voice track"
        await client.wait_for(
            lambda: (
                voice.first_loud_at is not None and voice.loud_after(time.monotonic() - 0.3) is None
            ),
            15,
            "the greeting to finish",
        )
        speech_ended = await client.speak_wav(wav, trailing_silence=2.0)
        await client.wait_for(
            lambda: voice.loud_after(speech_ended) is not None, 10, "the answer to be audible"
        )
        answer_at = voice.loud_after(speech_ended)
        assert answer_at is not None
        sample.voice_to_voice_ms = (answer_at - speech_ended) * 1000
        with contextlib.suppress(AssertionError):
            await client.wait_for(
                lambda: client.captions_of(started.user_identity), 2, "the user's caption"
            )
        heard = client.captions_of(started.user_identity)
        sample.heard = heard[0].text if heard else ""
        live = client.captions_of(started.user_identity, final_only=False)
        interims = [c.first_chunk_at for c in live if not c.final]
        if interims and client.speech_started_at is not None:
            sample.interim_caption_ms = (min(interims) - client.speech_started_at) * 1000
    except (AssertionError, TimeoutError) as exc:
        sample.error = str(exc)
    finally:
        await _finish(api, client, started.room_name)
    return sample


async def _finish(api: GatewayApi, client: VoiceClient, room: str) -> None:
    # Leave first: a room the server closed skips the SDK's own cleanup, and its stale FFI
    # subscriptions would then tax every later session of the run.
    await client.leave()
    try:
        await api.end(room)
    except Exception as exc:  # reported, and the next session still runs
        print(f"  /end failed for {room}: {exc}", file=sys.stderr)
