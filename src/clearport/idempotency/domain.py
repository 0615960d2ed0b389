"""What the idempotency store keeps for a completed request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The response a retry of the request under (scope, key) gets back, byte for byte."""

    scope: str
    key: str
    status: int
    body: bytes
