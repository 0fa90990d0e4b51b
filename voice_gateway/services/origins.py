"""Browser origins: the form of a publishable key's allow list, and matching a request against it.

An entry is an exact origin (`https://app.example.com`, `http://localhost:3000`) or a subdomain
wildcard (`https://*.example.com`, which does not match `https://example.com` itself). Scheme and
host compare case-insensitively and a default port is the same as none, as browsers send them.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(value: str, *, allow_wildcard: bool = False) -> str | None:
    """The canonical `scheme://host[:port]`, or None when `value` is not an origin."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    if "*" in host:
        labels = host.split(".")
        if not allow_wildcard or labels[0] != "*" or "*" in host[1:] or len(labels) < 3:
            return None
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def origin_allowed(origin: str | None, allowed: Iterable[str]) -> bool:
    """Whether the request's Origin header is on the list (entries already normalized)."""
    if not origin:
        return False
    candidate = normalize_origin(origin)
    if candidate is None:
        return False  # includes the opaque "null" origin of sandboxed frames and file: pages
    scheme, _, rest = candidate.partition("://")
    for entry in allowed:
        if entry == candidate:
            return True
        entry_scheme, _, entry_rest = entry.partition("://")
        if entry_scheme == scheme and entry_rest.startswith("*."):
            suffix = entry_rest[1:]  # ".example.com" or ".example.com:8443"
            if rest.endswith(suffix) and len(rest) > len(suffix):
                return True
    return False
