"""What routing needs from the connectors."""

from __future__ import annotations

from typing import Protocol


class KnownConnectors(Protocol):
    async def names(self) -> frozenset[str]:
        """Every connector name a rule may refer to."""
        ...
