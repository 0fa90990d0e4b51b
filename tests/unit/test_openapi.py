"""The OpenAPI document describes every route the gateway serves and nothing else, with each
declared model, error code and security scheme, and is a valid OpenAPI 3.1 document."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy
from openapi_spec_validator import validate
from schemathesis.generation import GenerationMode

from voice_gateway.app import create_app
from voice_gateway.config import GatewaySettings
from voice_gateway.openapi import build_document, declared_routes, error_classes
from voice_gateway.operations import file_route
from voice_gateway.routes.meta import OPENAPI_DOCUMENT
from voice_gateway.state import SETTINGS

pytestmark = pytest.mark.unit

# Answered for any path, so no operation lists them; the document's error table does.
GLOBAL_CODES = {"internal_error", "method_not_allowed"}
# Answered by the page's files alone (a FileRoute, not in the paths); the error table lists it.
FILE_CODES = {"web_client_not_built"}


def routes_of(app: web.Application) -> set[tuple[str, str]]:
    """Every route, less those that serve the web app's files (declared as such, with why)."""
    return {(m, path) for m, path, handler in declared_routes(app) if not file_route(handler)}


def file_routes_of(app: web.Application) -> set[tuple[str, str]]:
    return {(m, path) for m, path, handler in declared_routes(app) if file_route(handler)}


def described(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, ops in document["paths"].items() for m in ops}


@pytest.fixture(params=[None, 0], ids=["metrics-on-api-port", "metrics-on-own-port"])
def app(request: pytest.FixtureRequest) -> web.Application:
    return create_app(GatewaySettings(metrics_port=request.param))


def test_each_route_is_described_and_each_described_route_exists(app: web.Application) -> None:
    document = app[OPENAPI_DOCUMENT]
    assert described(document) == routes_of(app)
    assert ("GET", "/v1/openapi.json") in described(document)
    assert ("POST", "/v1/sessions/start") in described(document)
    assert {("POST", "/v1/livekit/token"), ("GET", "/v1/agents")} <= described(document)
    assert ("GET", "/config.json") in described(document)
    # What is left out is the page's files alone, and the document says it is served.
    assert file_routes_of(app) == {("GET", "/{path}")}
    assert "`GET /{path}`" in document["info"]["description"]
    # With a port of its own, /metrics is not served (nor described) on the API's port.
    metrics_on_api_port = app[SETTINGS].metrics_port is None
    assert (("GET", "/metrics") in described(document)) == metrics_on_api_port


def test_an_undeclared_route_is_caught() -> None:
    """The check above can fail: a route added the old way is served but not described."""

    async def extra(_request: web.Request) -> web.Response:
        return web.Response()

    app = create_app(GatewaySettings())
    app.router.add_post("/v1/extra", extra)
    document = build_document(app, title="t", version="0")
    assert routes_of(app) - described(document) == {("POST", "/v1/extra")}


def test_the_document_is_valid_openapi_3_1(app: web.Application) -> None:
    document = app[OPENAPI_DOCUMENT]
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_error_code_is_documented_with_the_error_schema(app: web.Application) -> None:
    document = app[OPENAPI_DOCUMENT]
    documented: set[str] = set()
    for ops in document["paths"].values():
        for op in ops.values():
            for status, response in op["responses"].items():
                if not response["description"].startswith("Error:"):
                    continue  # an answer (/readyz's 503 is one), not an error
                schema = response["content"]["application/json"]["schema"]
                shape = "OpenAIErrorResponse" if op["tags"] == ["openai"] else "ErrorResponse"
                assert schema["allOf"][0] == {"$ref": f"#/components/schemas/{shape}"}
                codes = schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"]
                assert codes, (op["operationId"], status)
                documented.update(codes)
    every = {cls.code for cls in error_classes()}
    assert every - documented <= GLOBAL_CODES | FILE_CODES
    for code in every:
        assert f"`{code}`" in document["info"]["description"]
    error = document["components"]["schemas"]["ErrorDetail"]
    assert set(error["required"]) == {"code", "message", "requestId"}


def test_key_operations_name_their_scope_and_both_key_headers(app: web.Application) -> None:
    document = app[OPENAPI_DOCUMENT]
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == schemes["ApiKey"] | {"type": "apiKey", "in": "header"}
    assert schemes["ApiKey"]["name"] == "x-api-key"
    start = document["paths"]["/v1/sessions/start"]["post"]
    assert start["security"] == [
        {"ApiKey": ["sessions:write"]},
        {"BearerApiKey": ["sessions:write"]},
    ]
    assert {"401", "403", "429", "503"} <= set(start["responses"])
    assert document["paths"]["/v1/audit"]["get"]["x-required-scope"] == "keys:write"
    assert document["paths"]["/healthz"]["get"]["security"] == []


def test_bodies_and_answers_are_the_handlers_models(app: web.Application) -> None:
    document = app[OPENAPI_DOCUMENT]
    schemas = document["components"]["schemas"]
    start = document["paths"]["/v1/sessions/start"]["post"]
    body_ref = start["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = schemas[body_ref.rsplit("/", 1)[1]]
    assert body["required"] == ["agentId"] and body["additionalProperties"] is False
    assert set(body["properties"]) == {
        "agentId",
        "userIdentity",
        "agentConfig",
        "waitForAgent",
        "waitForAgentTimeoutSeconds",
    }
    answer_ref = start["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    answer = schemas[answer_ref.rsplit("/", 1)[1]]
    assert {"sessionId", "roomName", "userToken", "livekitUrl"} <= set(answer["required"])
    listing = document["paths"]["/v1/sessions"]["get"]
    params = {p.get("name"): p for p in listing["parameters"]}
    assert params["status"]["schema"]["items"]["enum"] == [
        "starting",
        "ringing",
        "active",
        "ended",
        "failed",
    ]
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 200}


def schema_of(document: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    return document["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]  # type: ignore[no-any-return]


def test_the_token_endpoint_is_described_in_livekits_snake_case(app: web.Application) -> None:
    document = app[OPENAPI_DOCUMENT]
    token = document["paths"]["/v1/livekit/token"]["post"]
    body = schema_of(document, token["requestBody"]["content"]["application/json"]["schema"])
    proto_names, json_names = body["anyOf"]  # protobuf JSON's camelCase names are read too
    assert {"room_name", "participant_identity", "room_config"} <= set(proto_names["properties"])
    assert {"roomName", "participantIdentity", "roomConfig"} <= set(json_names["properties"])
    assert proto_names["required"] == ["room_config"] and json_names["required"] == ["roomConfig"]
    # The gateway names the room: a client may only leave it unchosen.
    assert proto_names["properties"]["room_name"]["enum"] == ["", None]
    answer = schema_of(document, token["responses"]["201"]["content"]["application/json"]["schema"])
    assert set(answer["required"]) == {
        "server_url",
        "participant_token",
        "room_name",
        "participant_name",
    }
    assert token["x-required-scope"] == "sessions:write"
    forbidden = token["responses"]["403"]["content"]["application/json"]["schema"]["allOf"][1]
    codes = forbidden["properties"]["error"]["properties"]["code"]["enum"]
    assert {"secret_key_in_browser", "origin_not_allowed", "insufficient_scope"} <= set(codes)


def test_the_agent_list_takes_any_key(app: web.Application) -> None:
    agents = app[OPENAPI_DOCUMENT]["paths"]["/v1/agents"]["get"]
    assert agents["security"] == [{"ApiKey": []}, {"BearerApiKey": []}]
    assert "x-required-scope" not in agents
    assert {"401", "403"} <= set(agents["responses"])


def takes_input(operation: dict[str, Any]) -> bool:
    """A body, or a parameter besides the X-Request-Id every operation takes."""
    return "requestBody" in operation or any("name" in p for p in operation["parameters"])


def draw_some(strategy: SearchStrategy[Any]) -> list[Any]:
    drawn: list[Any] = []

    # No health checks: generation is slow on a loaded machine, and speed is not what is tested.
    @settings(max_examples=3, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(case: Any) -> None:
        drawn.append(case)

    draw()
    return drawn


def test_a_fuzzer_can_build_requests_for_every_operation(app: web.Application) -> None:
    """The document is not only valid but usable: schemathesis (tests/e2e/test_contract.py) makes
    valid and invalid requests for each operation from it. A schema it cannot generate from fails
    here in seconds instead of at the end of the contract run."""
    document = app[OPENAPI_DOCUMENT]
    for result in schemathesis.openapi.from_dict(document).get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE]
        if takes_input(document["paths"][operation.path][operation.method.lower()]):
            modes.append(GenerationMode.NEGATIVE)  # nothing to make invalid otherwise
        for mode in modes:
            assert draw_some(operation.as_strategy(generation_mode=mode)), (operation.label, mode)


def test_a_start_documents_its_idempotency_key_and_when_to_retry(app: web.Application) -> None:
    start = app[OPENAPI_DOCUMENT]["paths"]["/v1/sessions/start"]["post"]
    [key] = [p for p in start["parameters"] if p.get("name") == "Idempotency-Key"]
    assert key["in"] == "header" and key["required"] is False
    assert "Idempotent-Replayed" in start["responses"]["201"]["headers"]
    codes = {
        status: response["content"]["application/json"]["schema"]["allOf"][1]["properties"][
            "error"
        ]["properties"]["code"]["enum"]
        for status, response in start["responses"].items()
        if response["description"].startswith("Error:")
    }
    assert {"no_agent_available", "livekit_unavailable"} <= set(codes["503"])
    assert codes["504"] == ["agent_timeout"]
    assert {"idempotency_conflict", "idempotency_in_progress"} <= set(codes["409"])
    for status in ("409", "429", "503"):  # each has a code that says when to retry
        assert "Retry-After" in start["responses"][status]["headers"]
    assert "Retry-After" not in start["responses"]["400"]["headers"]


def test_streamed_answers_are_described_beside_their_json(app: web.Application) -> None:
    """A chat message and a completion answer JSON or, when asked, server-sent events: both
    media types are in the document, and the OpenAI-compatible routes' errors in OpenAI's
    shape."""
    paths = app[OPENAPI_DOCUMENT]["paths"]
    send = paths["/v1/chat/sessions/{session_id}/messages"]["post"]
    assert set(send["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert "message.delta" in send["responses"]["200"]["description"]
    assert {"404", "409", "429", "503"} <= set(send["responses"])
    completions = paths["/v1/chat/completions"]["post"]
    assert set(completions["responses"]["200"]["content"]) == {
        "application/json",
        "text/event-stream",
    }
    assert "[DONE]" in completions["responses"]["200"]["description"]
    not_found = completions["responses"]["404"]["content"]["application/json"]["schema"]
    assert not_found["allOf"][0] == {"$ref": "#/components/schemas/OpenAIErrorResponse"}
    assert "model_not_found" in str(not_found["allOf"][1])
    models = paths["/v1/models"]["get"]["responses"]["403"]["content"]["application/json"]
    assert "wrong_key_type" in str(models["schema"])
    schemas = app[OPENAPI_DOCUMENT]["components"]["schemas"]
    assert set(schemas["OpenAIErrorDetail"]["required"]) == {"message", "type", "param", "code"}
