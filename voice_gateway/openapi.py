"""The OpenAPI 3.1 document, generated from the app's routes and their `Operation` declarations.

Nothing here is written by hand about an endpoint: paths, parameters, bodies and answers come from
the declarations and the pydantic models the handlers use, error codes from the ApiError classes an
operation declares or implies. A route without a declaration is left out, and the unit test
tests/unit/test_openapi.py fails on it; the web app's files (a `FileRoute`) are left out on purpose
and named in the document's description.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from aiohttp import hdrs, web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from voice_gateway.errors import ApiError, RetryLater
from voice_gateway.openai_schemas import OpenAIErrorResponse
from voice_gateway.operations import Auth, ErrorShape, Operation, Raw, declared, file_route
from voice_gateway.schemas import ErrorResponse

OPENAPI_VERSION = "3.1.0"
REF = "#/components/schemas/{model}"

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "ApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "An API key (vgw_sk_… secret, vgw_pk_… publishable). The list in an "
        "operation's security requirement is the scope the key must hold.",
    },
    "BearerApiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "The same API key as `Authorization: Bearer <key>`.",
    },
    "WorkerToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Internal: a LiveKit access token for identity `agent-worker` with "
        "roomAdmin on the room the agent worker reports on.",
    },
    "AgentWorkerToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Internal: a LiveKit access token for identity `agent-worker` with the "
        "`agent` grant and no room, for the worker's capacity reports.",
    },
    "LiveKitWebhook": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "LiveKit's webhook signature: a JWT signed with the LiveKit API secret "
        "that carries the SHA-256 of the body.",
    },
}
_SECURITY: dict[Auth, list[str]] = {
    Auth.NONE: [],
    Auth.KEY: ["ApiKey", "BearerApiKey"],
    Auth.ANY_KEY: ["ApiKey", "BearerApiKey"],
    Auth.WORKER: ["WorkerToken"],
    Auth.AGENT_WORKER: ["AgentWorkerToken"],
    Auth.LIVEKIT: ["LiveKitWebhook"],
}
REQUEST_ID_HEADER = {
    "description": "The request's id: the caller's X-Request-Id when it sent a sane one "
    "(1–64 printable ASCII characters), else a new one. Errors repeat it as error.requestId.",
    "schema": {"type": "string"},
}
RETRY_AFTER_HEADER = {
    "description": "Whole seconds to wait before trying again (with the codes that say to retry)",
    "schema": {"type": "integer", "minimum": 1},
}


def declared_routes(app: web.Application) -> Iterator[tuple[str, str, Any]]:
    """(method, path pattern, handler) of every route a client can call; HEAD beside GET is
    aiohttp's own and left out."""
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == hdrs.METH_HEAD:
            continue
        yield route.method, resource.canonical, route.handler


def error_classes() -> list[type[ApiError]]:
    """Every error class the service defines (subclasses anywhere in the gateway included); a
    base that adds no code of its own (RetryLater) is its parent's code, listed once."""
    seen: list[type[ApiError]] = []
    stack: list[type[ApiError]] = [ApiError]
    while stack:
        cls = stack.pop(0)
        if cls not in seen and all(c.code != cls.code for c in seen):
            seen.append(cls)
        stack.extend(cls.__subclasses__())
    return sorted(seen, key=lambda c: (c.status, c.code))


def build_document(app: web.Application, *, title: str, version: str) -> dict[str, Any]:
    operations: list[tuple[str, Operation[Any, Any]]] = []
    for method, path, handler in declared_routes(app):
        op = declared(handler)
        if op is not None and (op.method, op.path) == (method, path):
            operations.append((handler.__name__, op))
    names = [name for name, _ in operations]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"handlers share an operationId: {duplicates}")

    schemas = _Schemas(op for _, op in operations)
    paths: dict[str, dict[str, Any]] = defaultdict(dict)
    for name, op in operations:
        paths[op.path][op.method.lower()] = _operation(name, op, schemas)
    files = [
        (method, path, f.reason)
        for method, path, handler in declared_routes(app)
        if (f := file_route(handler)) is not None
    ]
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": _error_table() + _files_note(files),
        },
        "tags": [{"name": tag} for tag in dict.fromkeys(op.tag for _, op in operations)],
        "paths": dict(paths),
        "components": {
            "schemas": schemas.components,
            "securitySchemes": SECURITY_SCHEMES,
            "headers": {"X-Request-Id": REQUEST_ID_HEADER},
            "parameters": {
                "X-Request-Id": {"name": "X-Request-Id", "in": "header", **REQUEST_ID_HEADER}
            },
        },
    }


class _Schemas:
    """The pydantic models of all operations as components: bodies as they are validated,
    answers as they are serialized (pydantic names the two apart when they differ)."""

    def __init__(self, operations: Iterator[Operation[Any, Any]]) -> None:
        pairs: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
            (ErrorResponse, "serialization"): None,
            (OpenAIErrorResponse, "serialization"): None,
        }
        self._queries: dict[type[BaseModel], dict[str, Any]] = {}
        for op in operations:
            if op.body is not None:
                pairs[(op.body, "validation")] = None
            for answer in op.responses.values():
                if not isinstance(answer, Raw):
                    pairs[(answer, "serialization")] = None
            if op.query is not None:
                self._queries[op.query] = op.query.model_json_schema(ref_template=REF)
        refs, top = models_json_schema(list(pairs), ref_template=REF)
        self._refs = refs
        self.components: dict[str, Any] = dict(top.get("$defs", {}))
        for query in self._queries.values():
            self.components.update(query.pop("$defs", {}))

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(self._refs[(model, mode)])

    def query_parameters(self, model: type[BaseModel]) -> list[dict[str, Any]]:
        schema = self._queries[model]
        required = set(schema.get("required", []))
        params = []
        for name, prop in schema.get("properties", {}).items():
            param: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": _not_null(prop),
            }
            if "description" in prop:
                param["description"] = prop["description"]
            if param["schema"].get("type") == "array":
                param |= {"style": "form", "explode": True}
            params.append(param)
        return params


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or has a value: `null` is not one of its values."""
    prop = {k: v for k, v in prop.items() if k not in ("default", "title", "description")}
    options = [o for o in prop.pop("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:
        prop |= options[0]
    elif options:
        prop["anyOf"] = options
    return prop


def _operation(name: str, op: Operation[Any, Any], schemas: _Schemas) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": name,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": _parameters(op, schemas),
        "responses": _responses(op, schemas),
        "security": [{scheme: [op.scope] if op.scope else []} for scheme in _SECURITY[op.auth]],
    }
    if op.scope:
        out["x-required-scope"] = op.scope
    if op.body is not None:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": schemas.ref(op.body, "validation")}},
        }
    elif op.raw_body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {op.raw_body.media_type: {"schema": dict(op.raw_body.schema)}},
        }
    return out


def _parameters(op: Operation[Any, Any], schemas: _Schemas) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [{"$ref": "#/components/parameters/X-Request-Id"}]
    for segment in op.path.split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            name = segment[1:-1]
            schema = dict(op.path_params.get(name, {"type": "string", "minLength": 1}))
            params.append({"name": name, "in": "path", "required": True, "schema": schema})
    if op.query is not None:
        params.extend(schemas.query_parameters(op.query))
    for name, header_schema in op.header_params.items():
        spec = dict(header_schema)
        param: dict[str, Any] = {"name": name, "in": "header", "required": False, "schema": spec}
        if "description" in spec:
            param["description"] = spec.pop("description")
        params.append(param)
    return params


def _responses(op: Operation[Any, Any], schemas: _Schemas) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, answer in sorted(op.responses.items()):
        headers: dict[str, Any] = {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}
        for header in op.headers.get(status, {}):
            headers[header] = {"schema": {"type": "string"}}
        for header, meaning in op.optional_headers.get(status, {}).items():
            headers[header] = {"description": meaning, "schema": {"type": "string"}}
        if isinstance(answer, Raw):
            content = {answer.media_type: {"schema": dict(answer.schema)}}
            description = answer.description or "OK"
        else:
            content = {"application/json": {"schema": schemas.ref(answer, "serialization")}}
            description = (answer.__doc__ or "").strip().split("\n")[0] or answer.__name__
        for other in op.alternatives.get(status, ()):
            content[other.media_type] = {"schema": dict(other.schema)}
            description += f". {other.description}"
        out[str(status)] = {"description": description, "headers": headers, "content": content}
    by_status: dict[int, list[str]] = defaultdict(list)
    retry_after: set[int] = set()
    for cls in op.error_classes():
        by_status[cls.status].append(cls.code)
        if issubclass(cls, RetryLater):
            retry_after.add(cls.status)
    error_model = OpenAIErrorResponse if op.error_shape is ErrorShape.OPENAI else ErrorResponse
    for status, codes in sorted(by_status.items()):
        if str(status) in out:
            raise ValueError(f"{op.method} {op.path}: {status} is both an answer and an error")
        code_schema = {"properties": {"error": {"properties": {"code": {"enum": codes}}}}}
        out[str(status)] = {
            "description": "Error: " + ", ".join(f"`{c}`" for c in codes),
            "headers": {
                "X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"},
                **({"Retry-After": RETRY_AFTER_HEADER} if status in retry_after else {}),
            },
            "content": {
                "application/json": {
                    "schema": {"allOf": [schemas.ref(error_model, "serialization"), code_schema]}
                }
            },
        }
    return out


def _files_note(files: list[tuple[str, str, str]]) -> str:
    if not files:
        return ""
    rows = "\n".join(f"- `{method} {path}`: {reason}" for method, path, reason in files)
    return "\n\nServed beside the API and not described here:\n" + rows


def _error_table() -> str:
    rows = "\n".join(f"| {cls.status} | `{cls.code}` |" for cls in error_classes())
    return (
        "Start and end conversations with an AI voice agent over LiveKit.\n\n"
        'Every error is `{"error": {"code", "message", "requestId"}}` with a stable code; each '
        "operation lists the codes it may answer under each status.\n\n"
        "| status | code |\n|---|---|\n" + rows
    )
