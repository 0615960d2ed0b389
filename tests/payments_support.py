"""Helpers for payment tests that drive the services directly (janitor, sealer, faults)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from clearport.access.domain import Principal, PrincipalKind
from clearport.config import Settings
from clearport.connectors.ports import Connector
from clearport.core.clock import SystemClock
from clearport.wiring import Container, build_container

T = TypeVar("T")


class ShiftedClock:
    """The system clock moved forward: for expiring authorizations without waiting a week."""

    def __init__(self) -> None:
        self.offset = timedelta(0)
        self._clock = SystemClock()

    def now(self) -> datetime:
        return self._clock.now() + self.offset


def merchant_principal(merchant_id: str) -> Principal:
    return Principal(PrincipalKind.MERCHANT, key_id="key_test", merchant_id=merchant_id)


def with_container(
    settings: Settings,
    database_url: str,
    data_dir: Path,
    work: Callable[[Container], Awaitable[T]],
    *,
    clock: Any = None,
    connectors: Mapping[str, Connector] | None = None,
    **overrides: Any,
) -> T:
    """Run `work` against a fresh container (own pool, own event loop, own checkpoint dir),
    paying through `connectors` if given (else the simulator)."""
    local = settings.model_copy(update={"data_dir": data_dir, **overrides})

    async def main() -> T:
        container = build_container(local, database_url, clock=clock, connectors=connectors)
        await container.start()
        try:
            return await work(container)
        finally:
            await container.stop()

    return asyncio.run(main())
