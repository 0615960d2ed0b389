"""The OpenAPI document: what FastAPI generates from the routes, completed by rule.

FastAPI knows each operation's parameters, body and success model. What every `/v1` operation
shares comes from the mechanisms around the endpoints (`http/context.py`, `http/errors.py`,
`http/middleware.py`), so it is added here, once, for all of them:

- the `bearerAuth` security scheme (every key is a bearer token);
- the error answers: one `Error` schema, one response per status in `components.responses`,
  referenced by every operation on every status it can answer. Which ones follows the request
  path: any `/v1` call can be malformed (400), unauthenticated (401), refused (403), rate limited
  (429) or fail (500); an id in the path can be missing (404); a POST can meet its
  Idempotency-Key in use (409) or reused (422); a body can have the wrong type (415). An
  operation names further ones it can answer in its decorator (`responses=answers(404, 502)`);
- the `Idempotency-Key` header on every POST, the `Request-Id` header on every answer;
- FastAPI's default 422 `HTTPValidationError`, which Clearport never sends (validation fails with
  400 in the error shape), removed;
- the text rule (`http/request_rules.py`): every free-text string a request carries — in a body,
  a query or a path, a metadata key or value — declares the pattern that refuses control
  characters, so the document states what the server enforces;
- links between operations (`http/openapi_links.py`);
- what only the running application knows (`completions`: the connector types' settings).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from clearport.http.models.error import Error
from clearport.http.openapi_links import add_links
from clearport.http.request_rules import TEXT_PATTERN
from clearport.idempotency.service import IDEMPOTENCY_KEY_PATTERN, MAX_IDEMPOTENCY_KEY_LEN

SECURITY_SCHEME = "bearerAuth"
REF_SCHEMAS = "#/components/schemas/"
REF_RESPONSES = "#/components/responses/"


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    name: str
    description: str


ERROR_ANSWERS: dict[int, ErrorAnswer] = {
    400: ErrorAnswer(
        "BadRequest",
        "`invalid_request_error`: malformed JSON, a missing, invalid or unknown parameter.",
    ),
    401: ErrorAnswer(
        "Unauthorized", "`authentication_error`: no key, or an unknown, revoked or expired one."
    ),
    403: ErrorAnswer(
        "Forbidden", "`permission_error`: a valid key without the role for this operation."
    ),
    404: ErrorAnswer(
        "NotFound", "`invalid_request_error` (`resource_missing`): no such object, or not yours."
    ),
    409: ErrorAnswer(
        "Conflict",
        "`invalid_request_error` (`invalid_state`): the object's state forbids it; or "
        "`idempotency_error`: a request with this Idempotency-Key is still being processed.",
    ),
    415: ErrorAnswer(
        "UnsupportedMediaType",
        "`invalid_request_error` (`unsupported_media_type`): the body is not application/json.",
    ),
    422: ErrorAnswer(
        "IdempotencyMismatch",
        "`idempotency_error`: this Idempotency-Key was already used with a different request.",
    ),
    429: ErrorAnswer(
        "RateLimited", "`rate_limit_error`: too many requests; retry after `Retry-After` seconds."
    ),
    500: ErrorAnswer(
        "InternalError", "`api_error`: our fault; never a stack trace, never card data."
    ),
    502: ErrorAnswer(
        "BadGateway", "`api_error`: the connector failed or did not answer; retry later."
    ),
}

BODY_METHODS = frozenset({"post", "put", "patch"})


def answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error answers an operation adds to those of its kind, for its decorator's
    `responses=`; the document refers each to the shared response."""
    return {status: {"description": ERROR_ANSWERS[status].description} for status in statuses}


def openapi_document(
    app: FastAPI, completions: Sequence[Callable[[dict[str, Any]], None]] = ()
) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    error_schema = Error.model_json_schema(ref_template=REF_SCHEMAS + "{model}")
    schemas.update(error_schema.pop("$defs"))
    schemas["Error"] = error_schema
    components["securitySchemes"] = {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "A merchant secret key (`sk_test_…`, `sk_live_…`) or an operator "
            "key (`ok_…`): `Authorization: Bearer <key>`.",
        }
    }
    components["headers"] = HEADERS
    components["parameters"] = {"IdempotencyKey": IDEMPOTENCY_KEY}
    components["responses"] = {
        answer.name: _error_response(status, answer) for status, answer in ERROR_ANSWERS.items()
    }
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            _complete(path, method, operation)
    for complete in completions:
        complete(doc)
    _declare_text_rule(doc)
    add_links(doc)
    return doc


HEADERS: dict[str, Any] = {
    "RequestId": {
        "description": "This request's id (`req_…`), also in an error's `request_id`.",
        "required": True,
        "schema": {"type": "string", "pattern": "^req_"},
    },
    "IdempotentReplayed": {
        "description": "`true` when this is the stored answer to an earlier request with the "
        "same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "RetryAfter": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
}

IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes the POST safe to retry: the first completed answer is stored for at "
    "least 24 hours and a retry gets it back unchanged (header `Idempotent-Replayed: true`). "
    "Scoped to the caller's merchant or operator.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_IDEMPOTENCY_KEY_LEN,
        "pattern": IDEMPOTENCY_KEY_PATTERN,
    },
}


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _error_response(status: int, answer: ErrorAnswer) -> dict[str, Any]:
    headers = {"Request-Id": _header("RequestId")}
    if status == 429:
        headers["Retry-After"] = _header("RetryAfter")
    return {
        "description": answer.description,
        "headers": headers,
        "content": {"application/json": {"schema": {"$ref": REF_SCHEMAS + "Error"}}},
    }


def _statuses_of_kind(method: str, operation: dict[str, Any]) -> set[int]:
    statuses = {400, 401, 403, 429, 500}
    if any(p["in"] == "path" for p in operation.get("parameters", [])):
        statuses.add(404)
    if method in BODY_METHODS:
        statuses.add(415)
    if method == "post":
        statuses |= {409, 422}
    return statuses


def _complete(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation["responses"]
    responses.pop("422", None)  # FastAPI's HTTPValidationError; an operation's own comes back
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "query":
            _drop_null(parameter["schema"])
    if path.startswith("/v1/"):
        operation["security"] = [{SECURITY_SCHEME: []}]
        declared = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
        for status in sorted(declared | _statuses_of_kind(method, operation)):
            responses[str(status)] = {"$ref": REF_RESPONSES + ERROR_ANSWERS[status].name}
        if method == "post":
            operation.setdefault("parameters", []).append(
                {"$ref": "#/components/parameters/IdempotencyKey"}
            )
    operation["responses"] = responses = dict(sorted(responses.items()))
    for response in responses.values():
        if "$ref" in response:
            continue
        headers = response.setdefault("headers", {})
        headers["Request-Id"] = _header("RequestId")
        if method == "post":
            headers["Idempotent-Replayed"] = _header("IdempotentReplayed")


def _declare_text_rule(doc: dict[str, Any]) -> None:
    """Give every free-text string of a request (one without a pattern, an enum, a format or a
    constant of its own) the text rule's pattern: the schemas its parameters and bodies use,
    the components they refer to included, each visited once."""
    schemas: dict[str, Any] = doc["components"]["schemas"]
    pending: list[tuple[dict[str, Any], bool]] = []
    for operations in doc["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if "schema" in parameter:
                    pending.append((parameter["schema"], False))
            for media in operation.get("requestBody", {}).get("content", {}).values():
                pending.append((media["schema"], False))
    seen: set[int] = set()
    while pending:
        schema, is_name = pending.pop()
        if id(schema) in seen:
            continue
        seen.add(id(schema))
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_SCHEMAS):
            pending.append((schemas[ref.removeprefix(REF_SCHEMAS)], False))
            continue
        if (is_name or schema.get("type") == "string") and not _says_what_it_takes(schema):
            schema["pattern"] = TEXT_PATTERN
        for key in ("anyOf", "oneOf", "allOf"):
            pending.extend((option, is_name) for option in schema.get(key, []))
        pending.extend((sub, False) for sub in schema.get("properties", {}).values())
        pending.extend((sub, False) for sub in schema.get("patternProperties", {}).values())
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                pending.append((schema[key], False))
        if isinstance(schema.get("propertyNames"), dict):
            pending.append((schema["propertyNames"], True))


# A string that declares one of these says exactly what it takes; the text rule adds nothing.
TEXT_CONSTRAINTS = frozenset({"pattern", "enum", "const", "format"})
# Formats that only say how to show a string (a credential is `password`): still free text.
FREE_FORMATS = frozenset({"password"})


def _says_what_it_takes(schema: dict[str, Any]) -> bool:
    found = TEXT_CONSTRAINTS & schema.keys()
    return bool(found - {"format"}) or ("format" in found and schema["format"] not in FREE_FORMATS)


def _drop_null(schema: dict[str, Any]) -> None:
    """A query parameter is absent or a string, never null: `anyOf [X, null]` becomes X."""
    options = schema.get("anyOf")
    if options is None:
        return
    kept = [option for option in options if option != {"type": "null"}]
    if len(kept) == 1:
        del schema["anyOf"]
        schema.update(kept[0])
