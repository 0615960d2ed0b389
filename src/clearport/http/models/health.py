"""The answers of the unauthenticated liveness and readiness probes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from clearport.http.models.base import ResponseModel


class Liveness(ResponseModel):
    status: Literal["ok"]


class Readiness(ResponseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["unreachable", "not migrated"] | None = Field(
        default=None, description="Why the database is not ready (absent when it is)."
    )
    schema_: str | None = Field(
        default=None, alias="schema", description="The database's migration, when it has one."
    )
