"""LiveKit's token endpoint request, read as a session start: what a client may and may not ask."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from voice_gateway.errors import InvalidRequest
from voice_gateway.token_request import TokenRequest, read_token_request

pytestmark = pytest.mark.unit


def read(body: dict[str, Any]) -> Any:
    return read_token_request(TokenRequest.model_validate(body))


def demo(**dispatch: Any) -> dict[str, Any]:
    return {"agents": [{"agent_name": "demo", **dispatch}]}


def test_what_livekit_client_sends_becomes_a_start() -> None:
    # The body livekit-client's TokenSource.endpoint builds (proto field names).
    wanted = read(
        {
            "participant_identity": "caller-7",
            "participant_name": "Ada",
            "participant_metadata": '{"plan": "pro"}',
            "participant_attributes": {"tier": "gold"},
            "room_config": demo(metadata=json.dumps({"greeting": "Hi Ada"})),
        }
    )
    assert wanted.agent_id == "demo"
    assert wanted.user_identity == "caller-7"
    assert wanted.agent_config == {"greeting": "Hi Ada"}
    assert wanted.participant.name == "Ada"
    assert wanted.participant.metadata == '{"plan": "pro"}'
    assert wanted.participant.attributes == {"tier": "gold"}


def test_camel_case_json_names_are_read_too() -> None:
    wanted = read({"participantName": "Ada", "roomConfig": {"agents": [{"agentName": "demo"}]}})
    assert wanted.agent_id == "demo" and wanted.participant.name == "Ada"


def test_empty_values_mean_not_chosen() -> None:
    wanted = read({"room_name": "", "participant_identity": "", "room_config": demo(metadata="")})
    assert wanted.user_identity is None and wanted.agent_config is None


NOT_CHOSEN_BY_CLIENTS = [
    ({"room_name": "mine", "room_config": demo()}, "room_name"),
    ({"room_config": {**demo(), "name": "mine"}}, "room_config.name"),
    ({"room_config": {**demo(), "max_participants": 50}}, "room_config.max_participants"),
    ({"room_config": {**demo(), "empty_timeout": 3600}}, "room_config.empty_timeout"),
    ({"room_config": {**demo(), "egress": {"room": {}}}}, "room_config.egress"),
    ({}, "room_config.agents[0].agent_name"),
    ({"room_config": {"agents": []}}, "room_config.agents[0].agent_name"),
    ({"room_config": {"agents": [{"agent_name": "demo"}] * 2}}, "room_config.agents"),
    ({"room_config": demo(deployment="staging")}, "room_config.agents[0].deployment"),
    ({"room_config": demo(restart_policy="JRP_ALWAYS")}, "restart_policy"),
    ({"room_config": demo(metadata="not json")}, "room_config.agents[0].metadata"),
    ({"room_config": demo(metadata="[1, 2]")}, "room_config.agents[0].metadata"),
    ({"participant_identity": "no spaces", "room_config": demo()}, "participant_identity"),
    (
        {"participant_attributes": {"lk.agent.state": "x"}, "room_config": demo()},
        "participant_attributes",
    ),
]
MALFORMED = [
    {"room_config": demo(), "surprise": 1},
    {"room_config": {**demo(), "colour": "blue"}},
    {"participant_attributes": {"a": 1}, "room_config": demo()},
    {"participant_name": "x" * 129, "room_config": demo()},
    {"room_name": "", "roomName": "mine", "room_config": demo()},
    {"participantName": "Ada", "room_config": demo()},  # one naming per object
]
# What the endpoint takes: livekit-client's body, camelCase names, empty values, nulls.
TAKEN = [
    {
        "participant_identity": "caller-7",
        "participant_name": "Ada",
        "participant_metadata": '{"plan": "pro"}',
        "participant_attributes": {"tier": "gold"},
        "room_config": demo(metadata=json.dumps({"greeting": "Hi Ada"})),
    },
    {"participantName": "Ada", "roomConfig": {"agents": [{"agentName": "demo"}]}},
    {"room_name": "", "participant_identity": "", "room_config": demo(metadata="")},
    {"room_name": None, "participant_name": None, "room_config": {**demo(), "egress": None}},
    {"room_config": demo(restart_policy="JRP_ON_FAILURE")},
    {"participant_name": "Ada", "room_config": {"agents": [{"agentName": "demo"}]}},
]


@pytest.mark.parametrize(("body", "field"), NOT_CHOSEN_BY_CLIENTS)
def test_what_a_client_may_not_choose_is_refused_by_name(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        read(body)
    assert field in refused.value.message


@pytest.mark.parametrize("body", MALFORMED)
def test_unknown_or_malformed_fields_fail_validation(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TokenRequest.model_validate(body)


def test_the_documented_schema_says_what_is_taken_and_what_is_refused() -> None:
    """The OpenAPI document shows this body's JSON Schema: a body it allows is taken, a body it
    forbids is refused. (Only the agent's metadata is looser in the schema: JSON inside a string
    is not something JSON Schema checks.)"""
    schema = TokenRequest.model_json_schema()
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for body in TAKEN:
        assert not list(validator.iter_errors(body)), body
        read(body)
    for body, field in NOT_CHOSEN_BY_CLIENTS:
        if field != "room_config.agents[0].metadata":
            assert not validator.is_valid(body), (body, field)
    for body in MALFORMED:
        assert not validator.is_valid(body), body
