"""The in-process simulator's settings."""

from __future__ import annotations

from pydantic import Field

from clearport.connectors.settings import ConnectorSettings


class SimulatorSettings(ConnectorSettings):
    latency_ms: int = Field(default=0, ge=0, le=10_000, description="Added to every call.")
