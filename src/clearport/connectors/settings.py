"""A connector type's settings as a pydantic model: validated strictly, credentials split off.

A model's `SecretStr` fields are its credentials: `check` returns them apart (stored encrypted,
shown masked), everything else is shown as given. A validation error names the setting
(`settings[url]`) and never quotes a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from clearport.connectors.ports import CheckedSettings
from clearport.core.errors import InvalidRequest

MAX_TIMEOUT_MS = 60_000


class ConnectorSettings(BaseModel):
    """What every connector's settings share: strict JSON types, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NetworkSettings(ConnectorSettings):
    """A connector that talks to a host: how long to wait to connect, and for each answer."""

    timeout_ms: int = Field(
        default=5_000,
        ge=1,
        le=MAX_TIMEOUT_MS,
        description="How long to wait for an answer (read timeout).",
    )
    connect_timeout_ms: int = Field(
        default=2_000, ge=1, le=MAX_TIMEOUT_MS, description="How long to wait to connect."
    )


def secret_fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(
        name
        for name, info in model.model_fields.items()
        if info.annotation is SecretStr or info.annotation == (SecretStr | None)
    )


def check(model: type[BaseModel], settings: Mapping[str, Any]) -> CheckedSettings:
    try:
        parsed = model.model_validate(dict(settings))
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = tuple(str(part) for part in first["loc"])
        reason = "is not a setting of this type" if first["type"] == "extra_forbidden" else None
        raise InvalidRequest(
            f"'{{field}}' {reason or first['msg'].lower()}.",
            field=("settings", *where) if where else "settings",
        ) from None
    secrets = secret_fields(model)
    public = parsed.model_dump(mode="json", exclude=set(secrets))
    secret: dict[str, str] = {}
    for name in secrets:
        value = getattr(parsed, name)
        if isinstance(value, SecretStr):
            secret[name] = value.get_secret_value()
    return CheckedSettings(public=public, secret=secret)


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()
