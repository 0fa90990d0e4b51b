"""The network-safety rule for calls: a trunk address or transfer target outside the gateway's
VOICEGW_SIP_ALLOWED_DESTINATIONS is refused before LiveKit's SIP service is asked to send
anything, and the loopback-only list of the test and dev stacks lets nothing off the machine."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from devstack.stack import LOOPBACK_DESTINATIONS
from voice_gateway.config import GatewaySettings
from voice_gateway.errors import DestinationNotAllowed, InvalidRequest
from voice_gateway.sip_destinations import SipDestinations, host_of_address, host_of_sip_uri

pytestmark = pytest.mark.unit

LOOPBACK = SipDestinations(LOOPBACK_DESTINATIONS)
CARRIERS = SipDestinations(["10.20.0.0/16", "sip.carrier.example", "*.pbx.example", "tel"])


@pytest.mark.parametrize(
    ("address", "host"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1:5060", "127.0.0.1"),
        ("[::1]:5060", "::1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("sip.carrier.example:5061", "sip.carrier.example"),
    ],
)
def test_the_host_of_a_trunk_address(address: str, host: str) -> None:
    assert host_of_address(address) == host


@pytest.mark.parametrize(
    ("uri", "host"),
    [
        ("sip:desk@127.0.0.1", "127.0.0.1"),
        ("sip:desk@127.0.0.1:5062;transport=udp", "127.0.0.1"),
        ("sip:+15550199@[::1]:5060", "::1"),
        ("sip:desk@pbx.example>", "pbx.example"),
    ],
)
def test_the_host_of_a_transfer_target(uri: str, host: str) -> None:
    assert host_of_sip_uri(uri) == host


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:5060", "[::1]:5070", "::1"])
def test_loopback_trunks_are_allowed_on_the_test_stack(address: str) -> None:
    LOOPBACK.check_address(address, field="address")


@pytest.mark.parametrize(
    "address",
    [
        "192.0.2.10:5060",  # any other address
        "10.0.0.1",
        "localhost",  # a name is never looked up, so it matches names only
        "127.0.0.1.nip.io",  # a name that merely starts like loopback
        "2130706433",  # 127.0.0.1 as a number: not an address the rule knows
        "0.0.0.0",
    ],
)
def test_anything_else_is_refused_on_the_test_stack(address: str) -> None:
    with pytest.raises(DestinationNotAllowed):
        LOOPBACK.check_address(address, field="address")


def test_an_empty_list_allows_nothing() -> None:
    nothing = SipDestinations([])
    with pytest.raises(DestinationNotAllowed):
        nothing.check_address("127.0.0.1", field="address")
    with pytest.raises(DestinationNotAllowed):
        nothing.check_transfer("tel:+15550199")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("10.20.3.4", True),
        ("10.21.0.1", False),
        ("sip.carrier.example", True),
        ("SIP.Carrier.Example", True),
        ("evil-sip.carrier.example", False),
        ("east.pbx.example", True),
        ("a.b.pbx.example", True),
        ("pbx.example", False),  # *.domain names what is under it, not the domain itself
        ("pbx.example.evil", False),
    ],
)
def test_networks_names_and_wildcards(host: str, allowed: bool) -> None:
    assert CARRIERS.allows_host(host) is allowed


def test_tel_targets_need_the_tel_entry() -> None:
    CARRIERS.check_transfer("tel:+15550199")
    with pytest.raises(DestinationNotAllowed):
        LOOPBACK.check_transfer("tel:+15550199")


@pytest.mark.parametrize(
    "target",
    [
        "sip:desk@192.0.2.10",
        "sip:desk@example.com",
        "sip:127.0.0.1@192.0.2.10",  # the host is after the last @, not the user part
    ],
)
def test_a_transfer_off_the_machine_is_refused(target: str) -> None:
    with pytest.raises(DestinationNotAllowed):
        LOOPBACK.check_transfer(target)


@pytest.mark.parametrize(
    "target",
    [
        "sip:desk@127.0.0.1;maddr=192.0.2.10",  # maddr sends the request elsewhere
        "sip:desk@127.0.0.1;transport=udp;MADDR=192.0.2.10",
        "sip:desk@127.0.0.1?Route=%3Csip:192.0.2.10%3E",  # headers the transferee copies
        "http://127.0.0.1/",
    ],
)
def test_a_target_that_could_reroute_is_refused(target: str) -> None:
    with pytest.raises(InvalidRequest):
        LOOPBACK.check_transfer(target)


def test_a_loopback_transfer_is_allowed() -> None:
    LOOPBACK.check_transfer("sip:desk@127.0.0.1:5062")
    LOOPBACK.check_transfer("sip:desk@127.0.0.1:5062;transport=udp")


def test_a_typo_in_the_setting_fails_the_gateway_start() -> None:
    with pytest.raises(ValidationError):
        GatewaySettings(livekit_api_secret="s" * 32, sip_allowed_destinations=["10.0.0.0/33x"])
    settings = GatewaySettings(livekit_api_secret="s" * 32)
    assert settings.sip_allowed_destinations == []  # the default: nothing may be dialed
