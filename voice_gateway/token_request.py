"""LiveKit's standard token endpoint request, read as one of our session starts.

The request is protobuf JSON (`livekit.TokenSourceRequest`): livekit-client sends the proto field
names (snake_case); protobuf parsers also accept the camelCase JSON names, and so does this model,
one naming per object (no protobuf writer mixes them).
The agent is `room_config.agents[0].agent_name` (our agentId) and its `metadata`, when given, is a
JSON object of agentConfig overrides. What a client may not choose here (the room, its settings,
a second agent, a deployment) is refused with 400 naming the field, as LiveKit's docs ask of an
endpoint: better a clear error than a token for something else than was asked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar, get_args

from pydantic import AliasChoices, AliasGenerator, BaseModel, ConfigDict, Field, model_validator
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
_NOT_CHOSEN = "Not chosen by a client: leave it out (or send this value); anything else is 400."


def _both_names(name: str) -> AliasChoices:
    return AliasChoices(name, to_camel(name))


def _describe(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The document says what read_token_request takes: an object with its proto field names
    (snake_case) or one with their protobuf JSON names (camelCase), not a mix; `_fixed` fields
    only with their "not chosen" value; `_needed` fields present and not null."""
    assert issubclass(model, _Proto)
    props: dict[str, Any] = schema.pop("properties")
    for name, unset in model._fixed.items():
        nullable = type(None) in get_args(model.model_fields[name].annotation)
        values = [unset, None] if nullable and unset is not None else [unset]
        props[name] = {"enum": values, "description": _NOT_CHOSEN}
    for name in model._needed:
        prop = {k: v for k, v in props[name].items() if k != "default"}
        options = [o for o in prop.pop("anyOf", []) if o.get("type") != "null"]
        props[name] = prop | (options[0] if options else {})
    for name, extra in model._constraints.items():
        props[name] = {**props[name], **extra}
    schema.pop("additionalProperties", None)
    shapes = [
        {
            "title": title,
            "type": "object",
            "properties": {rename(n): p for n, p in props.items()},
            "required": [rename(n) for n in model._needed],
            "additionalProperties": False,
        }
        for title, rename in (("proto names", str), ("JSON names", to_camel))
    ]
    if shapes[0]["properties"] == shapes[1]["properties"]:
        schema.update(shapes[0], title=model.__name__)
    else:
        schema["anyOf"] = shapes


class _Proto(BaseModel):
    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=_both_names),
        extra="forbid",
        json_schema_extra=_describe,
    )
    # For the document only (read_token_request enforces them, with messages that say why):
    # fields a client may only leave unset, extra JSON Schema per field, fields it must send.
    _fixed: ClassVar[dict[str, Any]] = {}
    _constraints: ClassVar[dict[str, dict[str, Any]]] = {}
    _needed: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _one_naming(cls, data: Any) -> Any:
        """Protobuf JSON writers use one naming throughout; a mix is a client's bug, refused."""
        if isinstance(data, dict):
            fields = cls.model_fields
            snake = [k for k in data if k in fields and to_camel(k) != k]
            camel = [k for k in data if k not in fields and k in {to_camel(n) for n in fields}]
            if snake and camel:
                raise ValueError(
                    f"use the proto names ({snake[0]}) or the JSON names ({camel[0]}), not both"
                )
        return data


class RoomAgentDispatch(_Proto):
    """The agent to talk to: `agent_name` is an agent id (GET /v1/agents)."""

    _fixed: ClassVar[dict[str, Any]] = _DISPATCH_SETTINGS
    _constraints: ClassVar[dict[str, dict[str, Any]]] = {
        "agent_name": {"minLength": 1},
        "metadata": {
            "description": "agentConfig overrides: a JSON object inside the string, such as "
            '{"greeting": "Hi"}; a publishable key sets only what the agent allows',
            "contentMediaType": "application/json",
        },
        "restart_policy": {"enum": list(_DEFAULT_RESTART_POLICY)},
    }
    _needed: ClassVar[tuple[str, ...]] = ("agent_name",)

    agent_name: str = Field(default="", max_length=64, examples=["demo"])
    metadata: str = ""
    restart_policy: str | int | None = None
    deployment: str = ""
    attributes: dict[str, str] = Field(default_factory=dict)


class RoomConfiguration(_Proto):
    """What LiveKit would create the room with: the gateway creates it, so only the agent."""

    _fixed: ClassVar[dict[str, Any]] = _ROOM_SETTINGS
    _constraints: ClassVar[dict[str, dict[str, Any]]] = {"agents": {"minItems": 1, "maxItems": 1}}
    _needed: ClassVar[tuple[str, ...]] = ("agents",)

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
    """LiveKit's TokenSourceRequest, as an endpoint TokenSource sends it: each object with the
    proto field names (snake_case, as LiveKit's clients write them) or with the protobuf JSON
    names (camelCase), not a mix."""

    _fixed: ClassVar[dict[str, Any]] = {"room_name": ""}
    _constraints: ClassVar[dict[str, dict[str, Any]]] = {
        "participant_identity": {
            "anyOf": [
                {"type": "string", "pattern": IDENTITY_PATTERN},
                {"const": ""},
                {"type": "null"},
            ]
        },
        "participant_attributes": {
            "propertyNames": {"not": {"pattern": "^" + re.escape(RESERVED_ATTRIBUTE_PREFIX)}}
        },
    }
    _needed: ClassVar[tuple[str, ...]] = ("room_config",)

    room_name: str | None = None
    participant_name: str | None = Field(default=None, max_length=128)
    participant_identity: str | None = None
    participant_metadata: str | None = Field(default=None, max_length=MAX_METADATA_CHARS)
    participant_attributes: dict[str, str] = Field(default_factory=dict, max_length=32)
    room_config: RoomConfiguration | None = None


class TokenResponse(BaseModel):
    """A token for the new session's room (LiveKit's TokenSourceResponse, snake_case)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    server_url: str = Field(description="The LiveKit server to connect to")
    participant_token: str = Field(description="A LiveKit access token for the room")
    room_name: str = Field(description="The session's room, named by the gateway")
    participant_name: str = Field(description="The participant's name, or its identity")


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
