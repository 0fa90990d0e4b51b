"""One voice session: engines from the dispatched config, a greeting, transcripts to the gateway."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime

import structlog
from livekit import rtc
from livekit.agents import (
    AgentSession,
    AgentStateChangedEvent,
    AutoSubscribe,
    CloseEvent,
    ConversationItemAddedEvent,
    JobContext,
    JobProcess,
    MetricsCollectedEvent,
    llm,
    room_io,
)
from pydantic import ValidationError

from agent_worker.background import build_background_player, prewarm_ambience
from agent_worker.config import WorkerSettings
from agent_worker.engines.factory import (
    EngineConfigError,
    build_llm,
    build_stt,
    build_tts,
    build_vad,
    recognition_phrases,
)
from agent_worker.engines.responder_llm import ResponderLLM
from agent_worker.engines.sphinx_engine import SphinxEngine
from agent_worker.escalation import ESCALATE_TOOL, asks_for_person, build_escalation_tool
from agent_worker.gateway_client import GatewayClient
from agent_worker.listening_agent import ListeningAgent
from agent_worker.metrics import ENGINE_ERRORS, SESSIONS, PipelineObserver, count_engine_error
from agent_worker.process_shared import once_per_process
from agent_worker.quiet_gate import QuietGate, QuietGateInput
from agent_worker.typed_input import answer_typed_text, modality_of
from voice_common.agent_config import BackgroundAudioConfig, DispatchMetadata
from voice_common.brain.prompt import system_prompt

log = structlog.get_logger("agent_worker.session")

VOICE_TRACK = "agent_voice"
# Who the agent talks to: people with a LiveKit client, and phone callers (SIP participants).
CALLER_KINDS = [
    rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD,
    rtc.ParticipantKind.PARTICIPANT_KIND_SIP,
]
SIP_CALL_STATUS = "sip.callStatus"
# A phone caller's call can ring this long before the agent gives up on it.
CALL_ANSWER_TIMEOUT = 120.0
PREWARMED_VAD = "vad"
PREWARMED_SPHINX = "sphinx"
# The timings `make bench` breaks voice-to-voice into; VAD metrics (one a second) are left out.
_METRIC_FIELDS = (
    "duration",
    "audio_duration",
    "ttft",
    "ttfb",
    "end_of_utterance_delay",
    "transcription_delay",
    "on_user_turn_completed_delay",
)


def log_pipeline_metrics(ev: MetricsCollectedEvent) -> None:
    metrics = ev.metrics
    if metrics.type == "vad_metrics":
        return
    numbers = {
        name: value
        for name in _METRIC_FIELDS
        if isinstance(value := getattr(metrics, name, None), int | float)
    }
    log.info(
        "pipeline_metrics",
        metric=metrics.type,
        speech_id=getattr(metrics, "speech_id", None),
        **numbers,
    )


def report_first_audio(session: AgentSession[None], gateway: GatewayClient) -> None:
    """The agent's first audible frame ("speaking" starts on it), for the setup timeline."""

    def on_state(ev: AgentStateChangedEvent) -> None:
        if ev.new_state == "speaking":
            session.off("agent_state_changed", on_state)
            gateway.first_agent_audio(ev.created_at)

    session.on("agent_state_changed", on_state)


def prewarm(proc: JobProcess, settings: WorkerSettings) -> None:
    """Loads what every session needs before a job arrives, so a dispatch is answered at once.

    The Silero model and the PocketSphinx engine (a child process with the acoustic model) are
    shared by every session this process runs, under either executor (process_shared.py)."""
    proc.userdata[PREWARMED_VAD] = once_per_process(
        ("vad", settings.vad_min_silence_seconds),
        lambda: build_vad("silero", min_silence_seconds=settings.vad_min_silence_seconds),
    )
    if settings.shared_ambience:
        prewarm_ambience(BackgroundAudioConfig())
    proc.userdata[PREWARMED_SPHINX] = once_per_process(
        ("sphinx", settings.asr_cache_dir), lambda: _started_engine(settings)
    )


def _started_engine(settings: WorkerSettings) -> SphinxEngine:
    engine = SphinxEngine(settings.asr_cache_dir)
    engine.start()
    return engine


async def run_session(ctx: JobContext, settings: WorkerSettings) -> None:
    room_name = ctx.job.room.name
    gateway = GatewayClient(settings, room_name)
    try:
        meta = DispatchMetadata.model_validate_json(ctx.job.metadata)
    except ValidationError as exc:
        log.error("dispatch_metadata_invalid", room=room_name, errors=exc.error_count())
        SESSIONS.labels(outcome="failed").inc()
        await gateway.agent_failed("the dispatch metadata is not a valid agent config")
        await gateway.aclose()
        return
    structlog.contextvars.bind_contextvars(
        session_id=meta.session_id, room=room_name, agent_id=meta.agent_id
    )
    # One agent per room: a job of a replaced dispatch, or of an ended session, stays out.
    if not await gateway.claim_job(
        session_id=meta.session_id, attempt=meta.attempt, job_id=ctx.job.id, worker_id=ctx.worker_id
    ):
        log.warning("job_not_wanted", job_id=ctx.job.id, attempt=meta.attempt)
        await gateway.aclose()
        ctx.shutdown(reason="the gateway gave this session to another job")
        return
    config = meta.config
    try:
        sphinx: SphinxEngine | None = ctx.proc.userdata.get(PREWARMED_SPHINX)
        engine = build_llm(config.llm, config)
        session: AgentSession[None] = AgentSession(
            vad=build_vad(
                config.vad,
                prewarmed=ctx.proc.userdata.get(PREWARMED_VAD),
                min_silence_seconds=settings.vad_min_silence_seconds,
            ),
            stt=build_stt(
                config.stt, config.language, sphinx=sphinx, phrases=recognition_phrases(config)
            ),
            llm=engine,
            tts=build_tts(config.tts, config.voice),
            turn_handling={
                "turn_detection": "vad",
                "endpointing": {"min_delay": settings.endpointing_min_delay},
                "interruption": {"mode": "vad"},
                "preemptive_generation": {"enabled": False},
            },
            user_away_timeout=None,
        )
    except EngineConfigError as exc:
        log.error("engine_config_failed", error=str(exc))
        ENGINE_ERRORS.labels(engine="config", recoverable="false").inc()
        SESSIONS.labels(outcome="failed").inc()
        await gateway.agent_failed(str(exc))
        await gateway.aclose()
        return

    gateway.start()
    ctx.add_shutdown_callback(gateway.aclose)

    @session.on("conversation_item_added")
    def _on_item(ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if item.type != "message" or item.role not in ("user", "assistant"):
            return
        text = item.text_content
        if not text:
            return
        gateway.add_segment(
            {
                "segmentId": item.id or secrets.token_hex(8),
                "speaker": "user" if item.role == "user" else "agent",
                "text": text,
                "spokenAt": datetime.fromtimestamp(item.created_at, UTC).isoformat(),
                # The agent always answers in voice (and captions); the user spoke or typed.
                "modality": modality_of(item),
            }
        )

    session.on("metrics_collected", log_pipeline_metrics)
    streaming_stt = session.stt is not None and session.stt.capabilities.streaming
    session.on("metrics_collected", PipelineObserver(streaming_stt=streaming_stt))
    session.on("error", count_engine_error)
    report_first_audio(session, gateway)

    @session.on("close")
    def _on_close(ev: CloseEvent) -> None:
        # The caller hung up (or the pipeline failed): leave, so the room empties and LiveKit
        # closes it instead of keeping an agent talking to nobody.
        log.info("session_closed", reason=str(ev.reason), error=str(ev.error) if ev.error else None)
        ctx.shutdown(reason=f"session closed: {ev.reason}")

    tools: list[llm.Tool | llm.Toolset] = []
    if config.escalation.enabled:
        tools.append(build_escalation_tool(gateway.escalate))
        if isinstance(engine, ResponderLLM):
            phrases = tuple(config.escalation.phrases)
            engine.escalate_on(
                lambda text: asks_for_person(text, phrases),
                config.escalation.message,
                ESCALATE_TOOL,
            )

    await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
    await session.start(
        agent=ListeningAgent(instructions=system_prompt(config), tools=tools),
        room=ctx.room,
        room_options=room_io.RoomOptions(
            text_input=room_io.TextInputOptions(text_input_cb=answer_typed_text),
            # With the quiet gate, the gain control runs behind it (quiet_gate.py): the gate
            # must judge the caller's own level, not a noise floor the AGC has lifted.
            audio_input=room_io.AudioInputOptions(auto_gain_control=not settings.quiet_gate),
            participant_kinds=CALLER_KINDS,
            audio_output=room_io.AudioOutputOptions(track_name=VOICE_TRACK),
            text_output=room_io.TextOutputOptions(sync_transcription=True),
            close_on_disconnect=True,
        ),
        record=False,
    )
    SESSIONS.labels(outcome="started").inc()
    _gate_quiet_input(session, settings)
    player = build_background_player(config.background_audio, shared=settings.shared_ambience)
    if player is not None:
        await player.start(room=ctx.room, agent_session=session)
        ctx.add_shutdown_callback(player.aclose)

    participant = await ctx.wait_for_participant(kind=CALLER_KINDS)
    log.info("user_joined", user_identity=participant.identity)
    if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_SIP:
        # A greeting spoken while the phone still rings is lost: wait for the answer.
        if not await _call_answered(ctx.room, participant):
            log.info("call_not_answered")
            return
        await gateway.call_answered()
    handle = session.say(config.greeting, allow_interruptions=False)
    await asyncio.shield(handle.wait_for_playout())


def _gate_quiet_input(session: AgentSession[None], settings: WorkerSettings) -> None:
    """Puts the quiet gate between the room's audio and everything that listens to it, and the
    gain control the room input would have applied behind the gate."""
    source = session.input.audio
    if not settings.quiet_gate or source is None:
        return
    gate = QuietGate(
        threshold_dbfs=settings.quiet_gate_dbfs,
        preroll_seconds=settings.quiet_gate_preroll_seconds,
        hangover_seconds=settings.quiet_gate_hangover_seconds,
    )
    session.input.audio = QuietGateInput(
        source, gate, gain=rtc.AudioProcessingModule(auto_gain_control=True)
    )


async def _call_answered(room: rtc.Room, participant: rtc.RemoteParticipant) -> bool:
    """LiveKit's SIP service marks the caller `sip.callStatus: active` once the call is up (an
    inbound call is answered as soon as it hears the agent's track)."""
    answered = asyncio.Event()

    def check(*_: object) -> None:
        if participant.attributes.get(SIP_CALL_STATUS) == "active":
            answered.set()

    room.on("participant_attributes_changed", check)
    try:
        check()
        await asyncio.wait_for(answered.wait(), CALL_ANSWER_TIMEOUT)
        return True
    except TimeoutError:
        return False
    finally:
        room.off("participant_attributes_changed", check)
