"""The served OpenAPI document as test tables: its operations, their parameters, the text
fields of their bodies, and a key each operation's access-table entry lets through."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from clearport.http.access_rules import ROUTE_ACCESS
from tests.support import Api

JSON = {"Content-Type": "application/json"}
METHODS = ("get", "post", "put", "patch", "delete")
KEY = object()  # a path segment standing for "a key of this object"
MERCHANT = {"name": "Acme", "country": "US", "mcc": "5411", "default_currency": "usd"}
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    def parameters(self, where: str) -> list[dict[str, Any]]:
        return [p for p in self.spec.get("parameters", []) if p["in"] == where]

    def url(self, **path_values: str) -> str:
        """The path with `path_values` (percent-encoded) and "x" for every other parameter."""
        url = self.path
        for parameter in self.parameters("path"):
            value = path_values.get(parameter["name"], "x")
            url = url.replace("{" + parameter["name"] + "}", quote(value, safe=""))
        return url

    def caller(self, keys: Keys) -> str:
        """A key the access table lets through, so the request reaches the rules."""
        allowed = ROUTE_ACCESS[(self.method.upper(), self.path)]
        return keys.merchant if allowed.merchant_keys else keys.admin


@dataclass(frozen=True)
class Keys:
    admin: str
    merchant: str

    @classmethod
    def of(cls, api: Api) -> Keys:
        admin = api.operator("admin")
        _, merchant = api.merchant(admin)
        return cls(admin, merchant)


def served_document(api: Api) -> dict[str, Any]:
    return dict(api.http.get(api.url + "/openapi.json").json())


def operations_of(document: dict[str, Any]) -> list[Operation]:
    """The /v1 operations (the API's; health, readiness and metrics are outside its rules)."""
    return [
        Operation(method, path, _with_parameters_resolved(document, spec))
        for path, item in document["paths"].items()
        if path.startswith("/v1/")
        for method, spec in item.items()
        if method in METHODS
    ]


def _with_parameters_resolved(document: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """The operation with its shared parameters (`$ref`: Idempotency-Key) spelled out."""
    parameters = [resolve(document, p) for p in spec.get("parameters", [])]
    return {**spec, "parameters": parameters}


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def text_fields(
    document: dict[str, Any], schema: dict[str, Any], field: tuple[Any, ...] = ()
) -> Iterator[tuple[Any, ...]]:
    """Every path to a string in a body `schema`: properties, dict values (and keys), items."""
    schema = resolve(document, schema)
    for variant in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        yield from text_fields(document, variant, field)
    if is_text(schema):
        yield field
    for name, child in schema.get("properties", {}).items():
        yield from text_fields(document, child, (*field, name))
    values = schema.get("additionalProperties")
    if isinstance(values, dict):
        yield (*field, KEY)
        yield from text_fields(document, values, (*field, "k"))
    if "items" in schema:
        yield from text_fields(document, schema["items"], (*field, 0))


def is_text(schema: dict[str, Any]) -> bool:
    """A string schema (`"type": "string"` or, in OpenAPI 3.1, a list of types holding it)."""
    kind = schema.get("type")
    return kind == "string" or (isinstance(kind, list) and "string" in kind)
