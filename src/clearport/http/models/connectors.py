"""Connectors as the API shows them, and the bodies that register and change them.

`settings` is free-form here because each connector type has its own: the OpenAPI document
states each type's settings (`document_types`, from the types this process knows, plug-ins
included), and the service checks them with the type's own rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints

from clearport.connectors.ports import ConnectorType
from clearport.connectors.service import NAME_PATTERN
from clearport.http.models.base import ConnectorId, ListOf, ResponseModel, Timestamp
from clearport.http.schemas import StrictModel

TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
ConnectorName = Annotated[
    str,
    StringConstraints(pattern=NAME_PATTERN),
    Field(description="What routing refers to; fixed once registered."),
]
ConnectorTypeName = Annotated[
    str,
    StringConstraints(pattern=TYPE_PATTERN),
    Field(description="`simulator`, `http_acquirer`, `iso8583`, or a plug-in's type."),
]
BreakerState = Literal["closed", "open", "half_open"]


class ConnectorCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "acquirer-a",
                    "type": "http_acquirer",
                    "settings": {"url": "http://127.0.0.1:9101", "timeout_ms": 3000},
                }
            ]
        }
    )

    name: ConnectorName
    type: ConnectorTypeName
    settings: dict[str, Any] = Field(default_factory=dict)


class ConnectorUpdate(StrictModel):
    settings: dict[str, Any] | None = Field(
        default=None,
        description="Merged into the current settings; a setting set to null is removed. A "
        "credential sent back in its masked form is kept.",
    )
    status: Literal["enabled", "disabled"] | None = None


class Connector(ResponseModel):
    id: ConnectorId
    object: Literal["connector"]
    name: str
    type: str
    settings: dict[str, Any] = Field(description="As registered; credentials masked.")
    status: Literal["enabled", "disabled"]
    breaker: BreakerState = Field(
        description="This process's circuit breaker for the connector (per process)."
    )
    created: Timestamp
    updated: Timestamp


class ConnectorList(ListOf[Connector]):
    pass


def _partial(schema: dict[str, Any]) -> dict[str, Any]:
    """Some of a type's settings, each also null (a change that removes it)."""
    partial = {k: v for k, v in schema.items() if k not in ("required", "title")}
    partial["properties"] = {
        name: {"anyOf": [prop, {"type": "null"}]}
        for name, prop in schema.get("properties", {}).items()
    }
    return partial


def document_types(doc: dict[str, Any], types: Mapping[str, ConnectorType]) -> None:
    """State each connector type's settings in the document: a registration is one of the
    types with its settings; a change's settings, part of some type's."""
    schemas: dict[str, Any] = doc["components"]["schemas"]
    create = schemas.get("ConnectorCreate")
    update = schemas.get("ConnectorUpdate")
    if create is None or update is None:
        return
    options = []
    for name in sorted(types):
        settings = types[name].settings_schema()
        option: dict[str, Any] = {
            "type": "object",
            "title": f"ConnectorCreate ({name})",
            "properties": {
                "name": create["properties"]["name"],
                "type": {"type": "string", "const": name},
                "settings": settings,
            },
            "required": ["name", "type", *(["settings"] if settings.get("required") else [])],
            "additionalProperties": False,
        }
        options.append(option)
    schemas["ConnectorCreate"] = {
        "title": "ConnectorCreate",
        "oneOf": options,
        "examples": create.get("examples", []),
    }
    update["properties"]["settings"] = {
        "description": update["properties"]["settings"].get("description", ""),
        "anyOf": [
            *(_partial(types[name].settings_schema()) for name in sorted(types)),
            {"type": "null"},  # no change to the settings
        ],
    }
