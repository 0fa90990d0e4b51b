"""Each HTTP operation declared once: path, authentication, models and error codes.

A handler reads its scope, body and query and shapes its answer through its declaration, and the
OpenAPI document (openapi.py) is generated from the very same declarations, so the two cannot
drift. Describing a new route is declaring an `Operation` and registering its handler with
`ApiRoutes.operation(...)` instead of `RouteTableDef.get/post`; tests/unit/test_openapi.py fails
for any route of the app that is not declared. The one kind of route left out of the document is
the web app's files (`FileRoute`, registered with `ApiRoutes.files(...)`), declared with why.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic

from aiohttp import web
from pydantic import BaseModel
from typing_extensions import TypeVar

from voice_gateway.errors import (
    ApiError,
    InsufficientScope,
    InvalidApiKey,
    InvalidJson,
    InvalidRequest,
    InvalidWebhookSignature,
    MissingApiKey,
    NotFound,
    OriginNotAllowed,
    PayloadTooLarge,
    SecretKeyInBrowser,
    StoreUnavailable,
    UnsupportedMediaType,
    WrongKeyType,
)
from voice_gateway.requests import authenticate, read_body, read_query
from voice_gateway.services.keys import PUBLISHABLE_SCOPES, Principal


class NoModel(BaseModel):
    """The type of an operation's body or query when it has none."""


B = TypeVar("B", bound=BaseModel, default=NoModel)
Q = TypeVar("Q", bound=BaseModel, default=NoModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Auth(enum.StrEnum):
    NONE = "none"
    KEY = "key"  # an API key in x-api-key or Authorization: Bearer, holding `scope`
    ANY_KEY = "any_key"  # any valid API key, whatever its scopes or kind
    WORKER = "worker"  # the agent worker's LiveKit-signed token for the room it reports on
    AGENT_WORKER = "agent_worker"  # the worker's LiveKit-signed token with the agent grant
    LIVEKIT = "livekit"  # LiveKit's signed webhook (a JWT carrying the body's hash)


@dataclass(frozen=True, slots=True)
class Raw:
    """A body or an answer the handler reads or writes itself (not one of our models)."""

    media_type: str
    schema: Mapping[str, Any]
    description: str = ""


Response = type[BaseModel] | Raw


class ErrorShape(enum.Enum):
    """How an operation's errors look on the wire: ours ({"error": {"code", "message",
    "requestId"}}), or OpenAI's ({"error": {"message", "type", "param", "code"}}) on the
    OpenAI-compatible routes, where OpenAI's own clients read them."""

    API = "api"
    OPENAI = "openai"


_KEY_ERRORS = (MissingApiKey, InvalidApiKey, SecretKeyInBrowser, StoreUnavailable)
_AUTH_ERRORS: dict[Auth, tuple[type[ApiError], ...]] = {
    Auth.NONE: (),
    Auth.KEY: (*_KEY_ERRORS, InsufficientScope),
    Auth.ANY_KEY: (*_KEY_ERRORS, OriginNotAllowed),
    Auth.WORKER: (MissingApiKey, InvalidApiKey, StoreUnavailable),
    Auth.AGENT_WORKER: (MissingApiKey, InvalidApiKey, StoreUnavailable),
    Auth.LIVEKIT: (InvalidWebhookSignature, StoreUnavailable),
}
_BODY_ERRORS = (InvalidJson, InvalidRequest, PayloadTooLarge, UnsupportedMediaType)


@dataclass(frozen=True, kw_only=True, eq=False)
class Operation(Generic[B, Q]):
    method: str
    path: str
    summary: str
    tag: str
    responses: Mapping[int, Response]
    auth: Auth = Auth.KEY
    scope: str | None = None
    body: type[B] | None = None
    body_required: bool = True
    raw_body: Raw | None = None
    query: type[Q] | None = None
    # JSON Schemas of the path's {parameters}; a parameter not named here is a plain string.
    path_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    errors: tuple[type[ApiError], ...] = ()
    # Extra answer headers by status, e.g. {201: {"Cache-Control": "no-store"}}.
    headers: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    # Answer headers sent only sometimes, by status: name -> what it means (reply(headers=...)).
    optional_headers: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    # Optional request headers the operation reads: name -> JSON Schema (with a description).
    header_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The router's path when a parameter needs a regular expression; without it, `path`.
    route: str | None = None
    # Other media types a status may answer in, chosen by the request (e.g. text/event-stream
    # for `Accept: text/event-stream` or `"stream": true`), beside the one in `responses`.
    alternatives: Mapping[int, tuple[Raw, ...]] = field(default_factory=dict)
    error_shape: ErrorShape = ErrorShape.API
    # False for reads a page makes of its own origin: browsers send no Origin on a same-origin
    # GET, so a publishable key is then taken without one (a cross-origin call carries one).
    origin_required: bool = True

    def __post_init__(self) -> None:
        if (self.auth == Auth.KEY) != (self.scope is not None):
            raise ValueError(f"{self.method} {self.path}: a scope goes with key authentication")

    def error_classes(self) -> list[type[ApiError]]:
        """Every error this operation may answer: declared, plus those its auth and body imply."""
        implied: list[type[ApiError]] = list(_AUTH_ERRORS[self.auth])
        if self.auth == Auth.KEY:
            publishable = self.scope in PUBLISHABLE_SCOPES
            implied.append(OriginNotAllowed if publishable else WrongKeyType)
        if self.body is not None:
            implied.extend(_BODY_ERRORS)
        if self.raw_body is not None:
            implied.append(PayloadTooLarge)
        if self.query is not None:
            implied.append(InvalidRequest)
        if "{" in self.path:
            implied.append(NotFound)  # a parameter the router cannot match, such as "a/b"
        return list(dict.fromkeys([*implied, *self.errors]))

    async def authenticate(self, request: web.Request) -> Principal:
        if self.auth not in (Auth.KEY, Auth.ANY_KEY):
            raise TypeError(f"{self.method} {self.path} takes no API key")
        return await authenticate(request, self.scope, origin_required=self.origin_required)

    async def read_body(self, request: web.Request) -> B:
        if self.body is None:
            raise TypeError(f"{self.method} {self.path} declares no body")
        return await read_body(request, self.body)

    def read_query(self, request: web.Request) -> Q:
        if self.query is None:
            raise TypeError(f"{self.method} {self.path} declares no query")
        return read_query(request, self.query)

    def reply(
        self,
        answer: BaseModel,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        """The answer as JSON with a status (and optional headers) this operation declares (one
        it does not is a bug)."""
        if status is None:
            status = min(self.responses)
        declared = self.responses.get(status)
        if declared is None or (isinstance(declared, type) and not isinstance(answer, declared)):
            raise TypeError(f"{self.method} {self.path} does not declare {status} {answer!r}")
        extra = dict(headers or {})
        undeclared = set(extra) - set(self.optional_headers.get(status, {}))
        if undeclared:
            raise TypeError(f"{self.method} {self.path} does not declare headers {undeclared}")
        return web.json_response(
            answer.model_dump(by_alias=True, mode="json"),
            status=status,
            headers={**self.headers.get(status, {}), **extra},
        )


@dataclass(frozen=True, slots=True)
class FileRoute:
    """A route that serves the web app's built files, not the API: left out of the document on
    purpose, with the reason, so the coverage check tells it apart from a route someone forgot
    to declare."""

    method: str
    route: str
    reason: str


_DECLARED: dict[Handler, Operation[Any, Any]] = {}
_ERROR_SHAPES: dict[str, ErrorShape] = {}
_FILES: dict[Handler, FileRoute] = {}


def declared(handler: Any) -> Operation[Any, Any] | None:
    """The operation a route's handler was registered for, or None for an undeclared route."""
    return _DECLARED.get(handler)


def error_shape(path: str) -> ErrorShape:
    """The error shape of the operations at a route's path (any of its methods, so a 405 on
    an OpenAI-compatible path is in OpenAI's shape too)."""
    return _ERROR_SHAPES.get(path, ErrorShape.API)


def file_route(handler: Any) -> FileRoute | None:
    """The declaration of a route that serves files, or None."""
    return _FILES.get(handler)


class ApiRoutes(web.RouteTableDef):
    """A RouteTableDef whose routes carry their declaration."""

    def operation(self, op: Operation[Any, Any]) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            _DECLARED[handler] = op
            if op.error_shape is not ErrorShape.API:
                _ERROR_SHAPES[op.route or op.path] = op.error_shape
            return self.route(op.method, op.route or op.path)(handler)

        return register

    def files(self, declaration: FileRoute) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            _FILES[handler] = declaration
            return self.route(declaration.method, declaration.route)(handler)

        return register
