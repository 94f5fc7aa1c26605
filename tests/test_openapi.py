"""The OpenAPI document: valid OpenAPI 3.1, served without a key, right under a mount point, printed by
``relaygate openapi``, and covering exactly the routes the gateway's apps dispatch on."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from examples import starlette_app
from relaygate import Gateway
from relaygate.api import ApiApp
from relaygate.cli import main
from relaygate.routes import Route, RouteTable, stack_routes
from relaygate.settings import Settings
from tests.asgi import Exchange, http_scope, run
from tests.conftest import ADMIN_KEY, KEY_A, make_settings

pytestmark = pytest.mark.anyio

METHODS = ("get", "post", "put", "patch", "delete")
# Endpoints being built beside this one (Responses, Anthropic Messages, images, MCP) and paths near the
# gateway's own: a path the gateway answers must be a declared route, hence documented. The dashboard's HTML
# pages under /ui are not API operations: the document's description points to them instead.
PROBES = [
    "/v1/responses",
    "/v1/messages",
    "/v1/images",
    "/mcp",
    "/mcp/",
    "/v1/completions",
    "/v1/audio/speech",
    "/v1/threads/t-1",
    "/metrics",
    "/docs",
    "/",
    "/proj-a/v1/responses",
    "/proj-a/v1/messages",
]


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item if method in METHODS}


async def test_the_document_is_valid_openapi_3_1_and_needs_no_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")  # the gateway has keys; none is sent
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert "x-trace-id" in response.headers
    document = response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)
    assert document["servers"] == [{"url": "/", "description": "This gateway."}]
    # Only the document and health are open: every other operation names its security scheme.
    open_ = {(m, p) for p, item in document["paths"].items() for m, op in item.items() if op.get("security") == []}
    assert open_ == {("get", "/openapi.json"), ("get", "/health")}
    assert document["components"]["securitySchemes"]["adminKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Admin-Key",
        "description": document["components"]["securitySchemes"]["adminKey"]["description"],
    }
    refused = await client.get("/threads/t/cost")  # the key is still needed everywhere else
    assert refused.status_code == 401


async def test_it_covers_exactly_the_routes_the_gateway_serves(gateway: Gateway, client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    routes = stack_routes(gateway.stack)
    # The apps' own dispatch tables: what they answer is what the document is built from.
    dispatched = {*gateway.proxy.handlers, *next(r for r in _layers(gateway) if isinstance(r, ApiApp)).handlers}
    assert dispatched <= set(routes)
    expected = {(route.method, route.path) for route in routes}
    expected |= {(route.method, route.project_path) for route in routes if route.scoped and route.project_path}
    assert operations(document) == expected
    for route in routes:
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["operationId"] == route.operation_id and operation["tags"] == [route.tag]
        assert "200" in operation["responses"]
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for path in ("/v1/chat/completions", "/{project_id}/v1/threads", "/threads/{thread_id}/messages", "/health"):
        assert path in document["paths"]


async def test_a_path_the_gateway_answers_is_a_declared_route(gateway: Gateway, client: httpx.AsyncClient) -> None:
    routes = RouteTable(stack_routes(gateway.stack))
    headers = {"authorization": f"Bearer {KEY_A}", "x-admin-key": ADMIN_KEY}
    for path in PROBES:
        for method in ("GET", "POST"):
            response = await client.request(method, path, headers=headers, json={})
            unknown = response.status_code == 404 and response.json()["error"]["code"] == "unknown_url"
            declared = routes.template(path) is not None
            assert unknown or declared, (
                f"{method} {path} answers {response.status_code} but no route declares it: declare it as a "
                "relaygate.routes.Route beside its app (see that module) so that the OpenAPI document shows it"
            )


async def test_each_answer_and_error_is_documented_with_its_schema(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    chat = document["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatCompletionRequest"
    }
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    statuses = set(chat["responses"])
    assert {"400", "401", "403", "404", "413", "429", "446", "502", "503", "504"} <= statuses
    limited = document["components"]["responses"]["TooManyRequests"]
    assert "Retry-After" in limited["headers"]
    assert limited["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert "MethodNotAllowed" in document["components"]["responses"]
    headers = {p["$ref"].rsplit("/", 1)[1] for p in chat["parameters"] if "$ref" in p}
    assert headers == {"ProjectIdHeader", "ThreadIdHeader", "RunIdHeader", "LabelHeader", "TagsHeader"}
    assert set(chat["responses"]["200"]["headers"]) >= {"X-Trace-Id", "X-Run-Id", "X-Provider-Name"}
    cost = document["paths"]["/threads/{thread_id}/cost"]["get"]
    assert cost["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ThreadCostAnswer"
    }
    assert document["paths"]["/admin/models"]["post"]["security"] == [{"adminKey": []}]
    schemas = document["components"]["schemas"]
    assert set(schemas["ErrorDetail"]["required"]) == {"message", "type", "param", "code"}
    assert "total_cost" in schemas["ThreadCostAnswer"]["properties"]


async def test_under_a_root_path_the_server_url_is_the_prefix(gateway: Gateway) -> None:
    scope = http_scope("/llm/openapi.json", method="GET")
    scope["root_path"] = "/llm"
    async with gateway.lifespan():
        exchange = await run(gateway.app, scope, Exchange())
    assert exchange.status == 200
    assert orjson.loads(exchange.text)["servers"][0]["url"] == "/llm"


def test_mounted_the_server_url_is_the_mount_point() -> None:
    app = starlette_app.build_app(Gateway(Settings(database="sqlite:///:memory:")))
    with TestClient(app) as client:
        response = client.get("/llm/openapi.json")
    assert response.status_code == 200
    assert response.json()["servers"][0]["url"] == "/llm"


async def test_with_the_ledger_off_the_management_routes_say_so() -> None:
    gateway = Gateway(Settings(database=None, admin_key=ADMIN_KEY))
    transport = httpx.ASGITransport(app=gateway.app)
    async with gateway.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        for method, path in [
            ("POST", "/threads"),
            ("GET", "/threads/t-1/messages"),
            ("GET", "/v1/threads/t-1/cost"),
            ("POST", "/default/v1/usage/total"),
            ("POST", "/analytics"),
            ("GET", "/pricing"),
        ]:
            response = await client.request(method, path)
            assert response.status_code == 404, (path, response.text)
            error = response.json()["error"]
            assert error["code"] == "ledger_off" and "ledger is off" in error["message"], error
            assert "database" in error["message"]
        admin = await client.get("/admin/models", headers={"x-admin-key": ADMIN_KEY})
        assert admin.status_code == 404 and admin.json()["error"]["code"] == "ledger_off"
        wrong_method = await client.get("/threads")
        assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
        chat = await client.post(
            "/v1/chat/completions", json={"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert chat.status_code == 200
        assert (await client.get("/openapi.json")).status_code == 200


def test_the_cli_prints_the_served_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["openapi"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == Gateway(Settings()).openapi.document()
    validate(printed)
    assert main(["openapi", "--server-url", "/llm"]) == 0
    assert json.loads(capsys.readouterr().out)["servers"][0]["url"] == "/llm"


def test_a_route_declared_twice_is_refused() -> None:
    route = Route("GET", "/x", "x", "X", "Service")
    with pytest.raises(ValueError, match="declared twice"):
        RouteTable([route, Route("GET", "/x", "y", "Y", "Service")])


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/v1/chat/completions", "/v1/chat/completions"),
        ("/v1/chat/completions/", "/v1/chat/completions"),
        ("/proj-a/v1/models/mock/echo", "/{project_id}/v1/models/{model}"),
        ("/v1/models", "/v1/models"),
        ("/threads/a/b/cost", "/threads/{thread_id}/cost"),
        ("/v1/threads/t/messages", "/v1/threads/{thread_id}/messages"),
        ("/projects/p/custom_prices", "/projects/{project_id}/custom_prices"),
        ("/proj-a/health", None),
        ("/wp-admin/setup-config.php", None),
    ],
)
def test_paths_read_as_their_route_templates(path: str, template: str | None) -> None:
    routes = RouteTable(stack_routes(Gateway(make_settings("http://127.0.0.1:9/v1")).stack))
    assert routes.template(path) == template


def _layers(gateway: Gateway) -> list[Any]:
    layers: list[Any] = []
    layer: Any = gateway.stack
    while layer is not None:
        layers.append(layer)
        layer = getattr(layer, "app", None)
    return layers


def test_the_docs_reference_is_rendered_from_the_document() -> None:
    import importlib.util
    import re
    from pathlib import Path
    from types import SimpleNamespace

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("openapi_hook", root / "docs/hooks/openapi.py")
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    source = (root / "docs/reference/http-api.md").read_text()
    page = SimpleNamespace(file=SimpleNamespace(src_uri="reference/http-api.md"))
    rendered = hook.on_page_markdown(source, page=page, config=None, files=None)
    assert hook.MARKER not in rendered
    document = Gateway(Settings(database=None)).openapi.document()
    for method, path in operations(document):
        assert f"### `{method} {path}`" in rendered
    anchors = set(re.findall(r"\{#(schema-[A-Za-z0-9_-]+)\}", rendered))
    assert set(re.findall(r"\(#(schema-[A-Za-z0-9_-]+)\)", rendered)) <= anchors
    assert {f"schema-{name}" for name in document["components"]["schemas"]} == anchors
    other = SimpleNamespace(file=SimpleNamespace(src_uri="index.md"))
    assert hook.on_page_markdown("# Home", page=other) == "# Home"
