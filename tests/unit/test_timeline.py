"""The setup timeline: steps in the order they happened, milliseconds between them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from voice_gateway.schemas import SessionView
from voice_gateway.store.models import SessionRecord, SessionStatus

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


RECORD = SessionRecord(
    id="ses_1",
    room_name="r",
    agent_id="demo",
    user_identity="u",
    status=SessionStatus.ACTIVE,
    end_reason=None,
    error=None,
    api_key_id="k",
    agent_config={},
    max_duration_seconds=60,
    created_at=T0,
    started_at=at(20),
    ended_at=None,
    user_joined_at=at(150),
    agent_joined_at=at(310),
    room_created_at=at(8),
    dispatched_at=at(19),
    job_assigned_at=at(95),
    first_agent_audio_at=at(900),
)


def test_steps_are_in_the_order_they_happened_with_the_gaps_between() -> None:
    timeline = SessionView.of(RECORD, detail=True).dump()["timeline"]
    assert [(s["step"], s["msSinceCreated"], s["msSincePrevious"]) for s in timeline] == [
        ("created", 0.0, None),
        ("roomCreated", 8.0, 8.0),
        ("dispatched", 19.0, 11.0),
        ("jobAssigned", 95.0, 76.0),
        ("userJoined", 150.0, 55.0),
        ("agentJoined", 310.0, 160.0),
        ("firstAgentAudio", 900.0, 590.0),
    ]


def test_missing_steps_come_last_and_a_redispatch_shows() -> None:
    record = replace(RECORD, first_agent_audio_at=None, redispatched_at=at(5019))
    timeline = SessionView.of(record, detail=True).dump()["timeline"]
    assert [s["step"] for s in timeline][-2:] == ["redispatched", "firstAgentAudio"]
    assert timeline[-1] == {
        "step": "firstAgentAudio",
        "at": None,
        "msSinceCreated": None,
        "msSincePrevious": None,
    }
    assert SessionView.of(record).dump()["timeline"] is None  # lists stay short
