"""Times a client sends are RFC 3339 date-times, in a JSON body (validated strictly) and in a
query string alike; anything else is a 400 that names the field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from voice_gateway.routes.internal import TranscriptIn
from voice_gateway.routes.keys import CreateKeyRequest
from voice_gateway.schemas import UsageQuery

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "text",
    ["2026-01-31T09:00:00Z", "2026-01-31T09:00:00.123456+00:00", "2026-01-31t09:00:00z"],
)
def test_rfc3339_times_are_read_from_json_and_query(text: str) -> None:
    want = datetime(2026, 1, 31, 9, tzinfo=UTC)
    body = CreateKeyRequest.model_validate_json(
        f'{{"name": "k", "expiresAt": "{text}"}}', strict=True
    )
    assert body.expires_at is not None and body.expires_at.replace(microsecond=0) == want
    query = UsageQuery.model_validate({"since": text})
    assert query.since is not None and query.since.replace(microsecond=0) == want


@pytest.mark.parametrize("value", ['"0.5"', "0", '"2026-01-31"', '"2026-01-31T09:00:00"', "true"])
def test_other_times_are_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="expiresAt"):
        CreateKeyRequest.model_validate_json(f'{{"name": "k", "expiresAt": {value}}}', strict=True)


def test_the_worker_transcript_body_is_accepted() -> None:
    spoken = datetime.now(UTC).isoformat()
    body = TranscriptIn.model_validate_json(
        '{"segments": [{"segmentId": "s1", "speaker": "user", "text": "hi", '
        f'"spokenAt": "{spoken}"}}]}}',
        strict=True,
    )
    assert body.segments[0].spoken_at == datetime.fromisoformat(spoken)
