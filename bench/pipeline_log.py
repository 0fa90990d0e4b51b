"""Reads the worker's `pipeline_metrics` log lines and splits one answer's latency into stages.

The worker logs livekit-agents' metrics (agent_worker/agent.py) as JSON lines with the room bound.
PocketSphinx streams (it decodes while the caller speaks), and the session's VAD ends the turn:

    speech ends --VAD silence--> end of speech: flush --STT tail--> transcript --endpointing-->
    turn committed --responder first token--> --TTS first byte--> audio out --transport--> heard

EOU metrics give transcript and commit times relative to the VAD's estimate of the speech's end;
the STT metric of a flush is the tail (flush to final transcript: what was left to decode when
the caller stopped); LLM `ttft` and TTS `ttfb` the next two stages.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

EVENT = "pipeline_metrics"
STAGES = ("end_of_speech", "stt", "turn_commit", "responder", "tts_first_audio")


def read_metrics(log_path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every pipeline_metrics line, in log order, grouped by room."""
    by_room: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if not log_path.exists():
        return by_room
    for line in _json_lines(log_path.read_text(errors="replace").splitlines()):
        if line.get("event") == EVENT and isinstance(line.get("room"), str):
            by_room[line["room"]].append(line)
    return by_room


def _json_lines(lines: Iterable[str]) -> Iterable[dict[str, Any]]:
    for raw in lines:
        raw = raw.strip()
        if not raw.startswith("{"):
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            yield value


def answer_breakdown(lines: list[dict[str, Any]]) -> dict[str, float] | None:
    """Stages of the last answered user turn in one room, in ms; None when a stage is missing."""
    eou_at = max((i for i, m in enumerate(lines) if m.get("metric") == "eou_metrics"), default=-1)
    if eou_at < 0:
        return None
    eou = lines[eou_at]
    stt = next((m for m in reversed(lines[:eou_at]) if m.get("metric") == "stt_metrics"), None)
    after = lines[eou_at + 1 :]
    llm = next((m for m in after if m.get("metric") == "llm_metrics"), None)
    tts = next((m for m in after if m.get("metric") == "tts_metrics"), None)
    if stt is None or llm is None or tts is None:
        return None
    transcript = float(eou["transcription_delay"])
    committed = float(eou["end_of_utterance_delay"])
    stt_s = float(stt["duration"])
    return {
        "end_of_speech": (transcript - stt_s) * 1000,
        "stt": stt_s * 1000,
        "turn_commit": (committed - transcript) * 1000,
        "responder": float(llm["ttft"]) * 1000,
        "tts_first_audio": float(tts["ttfb"]) * 1000,
    }
