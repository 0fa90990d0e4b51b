from __future__ import annotations

import hashlib
import hmac

import pytest

from voice_gateway.services.outgoing_webhooks import sign

pytestmark = pytest.mark.unit


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"type":"session.ended"}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", "1700000000", body) == "v1=" + expected
    assert sign("other", "1700000000", body) != sign("s3cret", "1700000000", body)
