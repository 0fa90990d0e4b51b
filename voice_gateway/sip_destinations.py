"""Where the gateway may have LiveKit's SIP service send a call: the network-safety rule.

An outbound trunk's address is where calls are dialed to, and a transfer's target is where the
caller's phone is sent; both are chosen through the API (a transfer target also through an agent's
`escalation.transferTo`, which a start request may override). So both are checked against one
allow-list setting, `VOICEGW_SIP_ALLOWED_DESTINATIONS`, when they are given and again when a call
is placed or transferred. Entries are IP addresses or networks (CIDR), host names, `*.domain`
(any name under it), and `tel` (tel: targets, which the caller's own carrier dials). Host names
are compared as written and never looked up: a lookup is itself traffic, and its answer may change
after the check. An empty list allows nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from voice_gateway.errors import DestinationNotAllowed, InvalidRequest

TEL = "tel"
_NAME = re.compile(
    r"^(\*\.)?[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?)*$"
)
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Destination:
    network: IpNetwork | None = None
    name: str | None = None  # exact, or "*.domain"
    tel: bool = False


def parse_destination(entry: str) -> Destination:
    """One entry of the setting; ValueError for anything else."""
    text = entry.strip().lower()
    if text == TEL:
        return Destination(tel=True)
    try:
        return Destination(network=ipaddress.ip_network(text, strict=False))
    except ValueError:
        pass
    if not _NAME.fullmatch(text):
        raise ValueError(
            f"{entry!r} is not an IP address, a CIDR network, a host name, *.domain or 'tel'"
        )
    return Destination(name=text)


def host_of_address(address: str) -> str:
    """The host of `host`, `host:port`, `[v6]` or `[v6]:port`."""
    if address.startswith("["):
        return address[1 : address.find("]")] if "]" in address else address
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


def host_of_sip_uri(uri: str) -> str:
    """The host of `sip:user@host[:port][;params][?headers]`."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    hostport = rest.rsplit("@", 1)[-1]
    hostport = re.split(r"[;?>]", hostport, maxsplit=1)[0]
    return host_of_address(hostport)


class SipDestinations:
    def __init__(self, allowed: Sequence[str]) -> None:
        self._entries = tuple(parse_destination(e) for e in allowed)

    def allows_host(self, host: str) -> bool:
        host = host.strip().lower()
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return any(_name_matches(e.name, host) for e in self._entries if e.name)
        return any(ip in e.network for e in self._entries if e.network is not None)

    def check_address(self, address: str, *, field: str) -> None:
        """An outbound trunk's `host[:port]`."""
        self._check_host(host_of_address(address), field)

    def check_transfer(self, target: str) -> None:
        """A transfer target: `sip:...@host` or `tel:...`."""
        if target.lower().startswith("tel:"):
            if not any(e.tel for e in self._entries):
                raise DestinationNotAllowed(
                    "to: tel: transfer targets are not allowed on this gateway "
                    "(add `tel` to VOICEGW_SIP_ALLOWED_DESTINATIONS)"
                )
            return
        if not target.lower().startswith("sip:"):
            raise InvalidRequest("to: a transfer target is a sip: or tel: URI")
        _no_rerouting(target)
        self._check_host(host_of_sip_uri(target), "to")

    def _check_host(self, host: str, field: str) -> None:
        if not self.allows_host(host):
            raise DestinationNotAllowed(
                f"{field}: {host} is not an allowed SIP destination "
                "(the gateway's VOICEGW_SIP_ALLOWED_DESTINATIONS)"
            )


def _no_rerouting(uri: str) -> None:
    """A SIP URI can send a request somewhere other than its host: a `maddr` parameter, or
    headers (`?Route=...`) the transferee copies into its INVITE. Neither is checked against the
    allow-list, so neither is accepted."""
    after_host = uri.rsplit("@", 1)[-1]
    if "?" in after_host:
        raise InvalidRequest("to: a transfer target may not carry SIP headers (`?...`)")
    params = after_host.split(";")[1:]
    if any(p.split("=", 1)[0].strip().lower() == "maddr" for p in params):
        raise InvalidRequest("to: a transfer target may not carry a maddr parameter")


def _name_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host != pattern[2:]
    return host == pattern
