"""LiveKit's standard token endpoint request, read as one of our session starts.

The request is protobuf JSON (`livekit.TokenSourceRequest`): livekit-client sends the proto field
names (snake_case); protobuf parsers also accept the camelCase JSON names, and so does this model.
The agent is `room_config.agents[0].agent_name` (our agentId) and its `metadata`, when given, is a
JSON object of agentConfig overrides. What a client may not choose here (the room, its settings,
a second agent, a deployment) is refused with 400 naming the field, as LiveKit's docs ask of an
endpoint: better a clear error than a token for something else than was asked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import AliasChoices, AliasGenerator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from voice_gateway.errors import InvalidRequest
from voice_gateway.schemas import IDENTITY_PATTERN
from voice_gateway.services.livekit import ParticipantDetails

RESERVED_ATTRIBUTE_PREFIX = "lk."
MAX_METADATA_CHARS = 4096
# RoomConfiguration fields the gateway sets itself, with the value that means "not chosen".
_ROOM_SETTINGS: dict[str, Any] = {
    "name": "",
    "empty_timeout": 0,
    "departure_timeout": 0,
    "max_participants": 0,
    "metadata": "",
    "egress": None,
    "min_playout_delay": 0,
    "max_playout_delay": 0,
    "sync_streams": False,
    "tags": {},
}
_DISPATCH_SETTINGS: dict[str, Any] = {"deployment": "", "attributes": {}}
_DEFAULT_RESTART_POLICY = (None, 0, "JRP_ON_FAILURE")
_IDENTITY = re.compile(IDENTITY_PATTERN)


def _both_names(name: str) -> AliasChoices:
    return AliasChoices(name, to_camel(name))


class _Proto(BaseModel):
    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=_both_names), extra="forbid"
    )


class RoomAgentDispatch(_Proto):
    agent_name: str = Field(default="", max_length=64)
    metadata: str = ""
    restart_policy: str | int | None = None
    deployment: str = ""
    attributes: dict[str, str] = Field(default_factory=dict)


class RoomConfiguration(_Proto):
    name: str = ""
    empty_timeout: int = 0
    departure_timeout: int = 0
    max_participants: int = 0
    metadata: str = ""
    egress: dict[str, Any] | None = None
    min_playout_delay: int = 0
    max_playout_delay: int = 0
    sync_streams: bool = False
    agents: list[RoomAgentDispatch] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)


class TokenRequest(_Proto):
    room_name: str | None = None
    participant_name: str | None = Field(default=None, max_length=128)
    participant_identity: str | None = None
    participant_metadata: str | None = Field(default=None, max_length=MAX_METADATA_CHARS)
    participant_attributes: dict[str, str] = Field(default_factory=dict, max_length=32)
    room_config: RoomConfiguration | None = None


@dataclass(frozen=True, slots=True)
class TokenStart:
    agent_id: str
    user_identity: str | None
    agent_config: dict[str, Any] | None
    participant: ParticipantDetails


def read_token_request(req: TokenRequest) -> TokenStart:
    if req.room_name:
        raise InvalidRequest(
            "room_name: the gateway names each session's room; leave it out "
            "(the answer's room_name tells which it is)"
        )
    config = req.room_config or RoomConfiguration()
    for name, unset in _ROOM_SETTINGS.items():
        if getattr(config, name) != unset:
            raise InvalidRequest(f"room_config.{name}: set by the gateway, not by a client")
    dispatch = _the_one_agent(config.agents)
    for name, unset in _DISPATCH_SETTINGS.items():
        if getattr(dispatch, name) != unset:
            raise InvalidRequest(f"room_config.agents[0].{name}: not supported by this endpoint")
    if dispatch.restart_policy not in _DEFAULT_RESTART_POLICY:
        raise InvalidRequest("room_config.agents[0].restart_policy: not supported by this endpoint")
    identity = req.participant_identity or None
    if identity is not None and not _IDENTITY.fullmatch(identity):
        raise InvalidRequest(
            "participant_identity: 1-128 characters of letters, digits and _ . : @ -"
        )
    for key in req.participant_attributes:
        if key.startswith(RESERVED_ATTRIBUTE_PREFIX):
            raise InvalidRequest(
                f"participant_attributes: {key!r}: names starting with 'lk.' are LiveKit's"
            )
    return TokenStart(
        agent_id=dispatch.agent_name,
        user_identity=identity,
        agent_config=_overrides(dispatch.metadata),
        participant=ParticipantDetails(
            name=req.participant_name or None,
            metadata=req.participant_metadata or None,
            attributes=dict(req.participant_attributes),
        ),
    )


def _the_one_agent(agents: list[RoomAgentDispatch]) -> RoomAgentDispatch:
    if len(agents) > 1:
        raise InvalidRequest("room_config.agents: a session has exactly one agent")
    if not agents or not agents[0].agent_name:
        raise InvalidRequest(
            "room_config.agents[0].agent_name: name the agent to talk to "
            "(an id from GET /v1/agents)"
        )
    return agents[0]


def _overrides(metadata: str) -> dict[str, Any] | None:
    """The agent's dispatch metadata carries agentConfig overrides, checked like /start's."""
    if not metadata:
        return None
    try:
        value = json.loads(metadata)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequest(
            "room_config.agents[0].metadata: must be a JSON object of agentConfig fields"
        )
    return value
