"""Where audit events are written and read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from clearport.audit.domain import AuditEvent
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction


class AuditLog(Protocol):
    async def append(self, tx: Transaction, event: AuditEvent) -> None: ...
    async def list(
        self, tx: Transaction, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[AuditEvent]: ...
