"""Origins as browsers send them, matched against a publishable key's list."""

from __future__ import annotations

import pytest

from voice_gateway.services.origins import normalize_origin, origin_allowed

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://app.example.com", "https://app.example.com"),
        ("HTTPS://App.Example.COM", "https://app.example.com"),
        ("https://app.example.com/", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("http://app.example.com:80", "http://app.example.com"),
        ("https://app.example.com:8443", "https://app.example.com:8443"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("null", None),
        ("", None),
        ("app.example.com", None),
        ("ftp://app.example.com", None),
        ("https://app.example.com/path", None),
        ("https://app.example.com?q=1", None),
        ("https://user@app.example.com", None),
        ("https://app.example.com:99999", None),
        ("https://*.example.com", None),  # a wildcard is for lists, never a request's origin
    ],
)
def test_normalize_origin(value: str, expected: str | None) -> None:
    assert normalize_origin(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://*.example.com", "https://*.example.com"),
        ("https://*.example.com:8443", "https://*.example.com:8443"),
        ("https://*.com", None),
        ("https://*", None),
        ("https://a.*.example.com", None),
        ("https://*app.example.com", None),
    ],
)
def test_wildcards_in_an_allow_list(value: str, expected: str | None) -> None:
    assert normalize_origin(value, allow_wildcard=True) == expected


ALLOWED = ["https://app.example.com", "http://localhost:3000", "https://*.example.org"]


@pytest.mark.parametrize(
    ("origin", "ok"),
    [
        ("https://app.example.com", True),
        ("https://APP.example.com:443", True),
        ("http://app.example.com", False),
        ("https://app.example.com:8443", False),
        ("https://app.example.com.evil.net", False),
        ("https://evilapp.example.com", False),
        ("http://localhost:3000", True),
        ("http://localhost:3001", False),
        ("https://shop.example.org", True),
        ("https://a.b.example.org", True),
        ("https://example.org", False),
        ("https://evil-example.org", False),
        ("http://shop.example.org", False),
        ("https://shop.example.org:8443", False),
        ("null", False),
        (None, False),
        ("", False),
    ],
)
def test_origin_allowed(origin: str | None, ok: bool) -> None:
    assert origin_allowed(origin, ALLOWED) is ok
