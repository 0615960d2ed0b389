"""The OpenAPI document is complete (issue 10): response models, the error schema on every status
an operation can answer, the bearer scheme, bounds and patterns on parameters, links between
operations; Swagger UI and ReDoc from local assets; docs/api.md lists exactly what is served."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from clearport.core.countries import ASSIGNED_COUNTRIES
from clearport.core.ids import PREFIXES
from clearport.http.request_rules import TEXT_PATTERN
from tests.support import Api, ThreadedServer

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"
ERROR_SCHEMA = {"$ref": "#/components/schemas/Error"}


@pytest.fixture
def doc(api: Api) -> dict[str, Any]:
    r = api.call("GET", "/openapi.json")
    assert r.status_code == 200
    return dict(r.json())


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
    ]


def _v1(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [op for op in _operations(doc) if op[1].startswith("/v1/")]


def test_the_document_is_valid_openapi(doc: dict[str, Any]) -> None:
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    assert len(_v1(doc)) >= 36


def test_every_v1_operation_needs_the_bearer_key(doc: dict[str, Any]) -> None:
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    for method, path, operation in _v1(doc):
        assert operation["security"] == [{"bearerAuth": []}], (method, path)
    for path in ("/healthz", "/readyz", "/metrics"):
        assert "security" not in doc["paths"][path]["get"]


def test_every_error_status_is_the_one_error_schema(doc: dict[str, Any]) -> None:
    responses = doc["components"]["responses"]
    for name, response in responses.items():
        assert response["content"]["application/json"]["schema"] == ERROR_SCHEMA, name
        assert "Request-Id" in response["headers"]
    assert "Retry-After" in responses["RateLimited"]["headers"]
    error = doc["components"]["schemas"]["ErrorDetail"]
    assert set(error["required"]) == {"type", "code", "message", "request_id"}
    for method, path, operation in _v1(doc):
        statuses = {int(s) for s in operation["responses"]}
        errors = {s for s in statuses if s >= 400}
        assert {400, 401, 403, 429, 500} <= errors, (method, path)
        if "{" in path:
            assert 404 in errors, (method, path)
        if method in ("post", "put", "patch"):
            assert 415 in errors, (method, path)
        # 422 is only ever the idempotency mismatch, which only a POST can meet.
        assert (422 in errors) == (method == "post"), (method, path)
        if method == "post":
            assert 409 in errors
            assert {"$ref": "#/components/parameters/IdempotencyKey"} in operation["parameters"]
        for status in errors:
            assert set(operation["responses"][str(status)]) == {"$ref"}, (method, path, status)
    # The connector-facing operations can fail upstream.
    for path in ("capture", "void", "refunds"):
        assert "502" in doc["paths"][f"/v1/payments/{{payment_id}}/{path}"]["post"]["responses"]


def test_fastapis_validation_error_is_gone(doc: dict[str, Any]) -> None:
    text = str(doc)
    assert "HTTPValidationError" not in text and "ValidationError'" not in text


def test_every_success_answer_has_a_schema(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for method, path, operation in _operations(doc):
        successes = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        assert successes, (method, path)
        for status, response in successes.items():
            assert "Request-Id" in response["headers"], (method, path)
            for media_type, content in response["content"].items():
                schema = content["schema"]
                assert schema != {}, (method, path, status)
                if media_type == "application/json":
                    named = schemas[schema["$ref"].rsplit("/", 1)[-1]]
                    for option in named.get("anyOf", [named]):  # BankAccount: one of two
                        strict = _resolve(doc, option)
                        assert strict.get("additionalProperties") is False, (path, option)
    # Every list is the list envelope.
    for name, schema in schemas.items():
        if name.endswith("List"):
            assert set(schema["required"]) == {"object", "url", "data", "has_more"}, name
            assert schema["properties"]["object"]["const"] == "list"


def test_parameters_carry_their_bounds_and_patterns(doc: dict[str, Any]) -> None:
    id_body = "_[0-9A-HJKMNP-TV-Z]{26}$"
    lists = 0
    for _, path, operation in _v1(doc):
        parameters = {p["name"]: p for p in operation.get("parameters", []) if "name" in p}
        for parameter in parameters.values():
            schema = parameter["schema"]
            assert "anyOf" not in schema, (path, parameter["name"])  # never "or null"
            if parameter["in"] == "path":
                prefix = schema["pattern"].removeprefix("^").removesuffix(id_body)
                assert prefix in PREFIXES, (path, parameter["name"], schema)
        if "limit" in parameters:
            lists += 1
            limit = parameters["limit"]["schema"]
            assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 100, 10)
            for cursor in ("starting_after", "ending_before"):
                assert parameters[cursor]["schema"]["pattern"].endswith(id_body), path
        for bound in ("created[gte]", "created[lt]"):
            if bound in parameters:
                schema = parameters[bound]["schema"]
                assert (schema["type"], schema["minimum"]) == ("integer", 0), path
    assert lists == 19  # with reconciliation's two lists and the routing and risk rule sets
    payments = doc["paths"]["/v1/payments"]["get"]["parameters"]
    (status,) = [p for p in payments if p.get("name") == "status"]
    assert doc["components"]["schemas"]["PaymentStatus"]["enum"][0] == "pending"
    assert status["schema"]["$ref"].endswith("/PaymentStatus")
    amount = doc["components"]["schemas"]["PaymentCreate"]["properties"]["amount"]
    assert (amount["minimum"], amount["maximum"]) == (1, 10**12)
    token = doc["components"]["schemas"]["PaymentSource"]["properties"]["token"]["anyOf"][0]
    assert token["pattern"] == "^tok" + id_body


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _schemas_at(doc: dict[str, Any], schema: dict[str, Any], pointer: str) -> list[Any]:
    """What `pointer` names in a body of `schema`: one schema per alternative of an anyOf."""
    schema = _resolve(doc, schema)
    if "anyOf" in schema:
        return [s for option in schema["anyOf"] for s in _schemas_at(doc, option, pointer)]
    if not pointer:
        return [schema]
    part, _, rest = pointer.partition("/")
    inner = schema["items"] if part.isdigit() else schema["properties"][part]
    return _schemas_at(doc, inner, rest)


def test_links_lead_to_operations_with_what_they_need(doc: dict[str, Any]) -> None:
    by_id = {op["operationId"]: op for _, _, op in _operations(doc)}
    count = 0
    for _, path, operation in _operations(doc):
        for response in operation["responses"].values():
            for name, link in response.get("links", {}).items():
                target = by_id[link["operationId"]]
                names = {p["name"] for p in target.get("parameters", []) if "name" in p}
                required = {p["name"] for p in target.get("parameters", []) if p.get("required")}
                assert required <= set(link["parameters"]) <= names, (path, name)
                body = response["content"]["application/json"]["schema"]
                for expression in link["parameters"].values():
                    pointer = expression.removeprefix("$response.body#")
                    assert pointer != expression, (path, name)
                    for leaf in _schemas_at(doc, body, pointer.removeprefix("/")):
                        assert leaf["type"] == "string" and "pattern" in leaf, (path, name)
                count += 1
    assert count >= 60
    created = doc["paths"]["/v1/payments"]["post"]["responses"]["201"]["links"]
    assert {"GetPayment", "CapturePayment", "VoidPayment", "RefundPayment"} <= set(created)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_nothing_from_another_host(api: Api, page: str) -> None:
    r = api.call("GET", page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]", r.text, re.IGNORECASE), r.text
    policy = r.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "http" not in policy
    assets = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert len(assets) >= 2
    for asset in assets:
        assert asset.startswith("/docs/assets/"), asset
        got = api.call("GET", asset)
        assert got.status_code == 200 and len(got.content) > 500, asset
    assert "/openapi.json" in r.text


def _documented(text: str) -> set[tuple[str, str]]:
    found = re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`", text)
    return {(method, re.sub(r"\{[^}]*\}", "{}", path)) for method, path in found}


def _served(app: Any) -> set[tuple[str, str]]:
    from fastapi.routing import iter_route_contexts
    from starlette.routing import Mount

    served: set[tuple[str, str]] = set()
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, Mount):
            served.add(("GET", f"{route.path}/{{}}"))
            continue
        for method in route.methods or ():
            if method != "HEAD":
                served.add((method, re.sub(r"\{[^}]*\}", "{}", str(route.path))))
    return served


def test_api_md_documents_exactly_the_served_routes(server: ThreadedServer) -> None:
    documented = _documented(API_MD.read_text())
    served = _served(server.server.config.app)
    assert served - documented == set(), "served but not in docs/api.md"
    assert documented - served == set(), "in docs/api.md but not served"


def _request_strings(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every string schema a request can carry (parameters, bodies, metadata keys), by where."""
    found: list[tuple[str, dict[str, Any]]] = []
    pending: list[tuple[str, Any, bool]] = []
    for method, path, operation in _v1(doc):
        for parameter in operation.get("parameters", []):
            if "schema" in parameter:
                pending.append((f"{method} {path} {parameter['name']}", parameter["schema"], False))
        for media in operation.get("requestBody", {}).get("content", {}).values():
            pending.append((f"{method} {path} body", media["schema"], False))
    seen: set[int] = set()
    while pending:
        where, schema, is_name = pending.pop()
        if id(schema) in seen:
            continue
        seen.add(id(schema))
        schema = _resolve(doc, schema)
        if is_name or schema.get("type") == "string":
            found.append((where, schema))
        for key in ("anyOf", "oneOf", "allOf"):
            pending.extend((where, option, is_name) for option in schema.get(key, []))
        for name, sub in schema.get("properties", {}).items():
            pending.append((f"{where}[{name}]", sub, False))
        if isinstance(schema.get("additionalProperties"), dict):
            pending.append((f"{where}[*]", schema["additionalProperties"], False))
        if isinstance(schema.get("items"), dict):
            pending.append((f"{where}[]", schema["items"], False))
        if isinstance(schema.get("propertyNames"), dict):
            pending.append((f"{where} key", schema["propertyNames"], True))
    return found


def test_every_request_string_states_what_it_may_hold(doc: dict[str, Any]) -> None:
    strings = _request_strings(doc)
    free_text = [(where, s) for where, s in strings if s.get("pattern") == TEXT_PATTERN]
    assert len(free_text) >= 10  # reference, metadata keys and values, names, reasons ...
    for where, schema in strings:
        assert {"pattern", "enum", "const", "format"} & schema.keys(), where
        if schema.get("format") == "password":  # says how to show it, not what it may hold
            assert schema.get("pattern") == TEXT_PATTERN, where
        if "pattern" in schema:
            # A pattern the server's own rule admits: no control character ever matches it.
            assert not re.search(schema["pattern"], "a\x00"), where
    refs = [where for where, _ in free_text]
    assert any(w.endswith("[settings][api_key]") for w in refs)  # a connector's credential
    assert any(w.endswith("[reference]") for w in refs)
    assert any(w.endswith("[metadata] key") for w in refs)
    assert any(w.endswith("[metadata][*]") for w in refs)


def test_country_codes_are_the_assigned_ones(doc: dict[str, Any]) -> None:
    country = doc["components"]["schemas"]["MerchantCreate"]["properties"]["country"]
    assert set(country["enum"]) == ASSIGNED_COUNTRIES
    assert "ZZ" not in country["enum"]


def test_a_connector_change_may_remove_a_setting_with_null(doc: dict[str, Any]) -> None:
    """What the server accepts (null removes a setting), the document states."""
    settings = doc["components"]["schemas"]["ConnectorUpdate"]["properties"]["settings"]
    iso = [o for o in settings["anyOf"] if "terminals" in o.get("properties", {})]
    assert iso and {"type": "null"} in iso[0]["properties"]["terminals"]["anyOf"]
    assert "required" not in iso[0]
    assert {"type": "null"} in settings["anyOf"]  # `settings: null` changes none
