"""Recording audit events with the six PCI DSS fields always filled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clearport.app.ports import AuditLog, Clock, Transaction, UnitOfWork
from clearport.domain.audit import AuditEvent, Outcome
from clearport.domain.ids import new_id
from clearport.domain.pagination import Page, PageRequest
from clearport.domain.principals import Principal
from clearport.domain.roles import Permission


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from; 'local' for the CLI."""

    ip: str = "local"


class Auditor:
    def __init__(self, log: AuditLog, clock: Clock) -> None:
        self._log = log
        self._clock = clock

    async def record(
        self,
        tx: Transaction,
        *,
        actor: str,
        event_type: str,
        resource: str,
        origin: Origin,
        outcome: Outcome = Outcome.SUCCESS,
        details: dict[str, Any] | None = None,
    ) -> None:
        await self._log.append(
            tx,
            AuditEvent(
                id=new_id("aud"),
                actor=actor,
                event_type=event_type,
                occurred_at=self._clock.now(),
                outcome=outcome,
                origin_ip=origin.ip,
                resource=resource,
                details=details or {},
            ),
        )


class AuditQueries:
    def __init__(self, uow: UnitOfWork, log: AuditLog) -> None:
        self._uow = uow
        self._log = log

    async def list(
        self, actor: Principal, page: PageRequest, filters: dict[str, Any]
    ) -> Page[AuditEvent]:
        actor.require(Permission.AUDIT_READ)
        async with self._uow.autocommit() as tx:
            return await self._log.list(tx, page, filters)
