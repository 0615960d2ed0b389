"""Recording audit events with the six PCI DSS fields always filled."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clearport.access.domain import Origin, Permission, Principal
from clearport.access.lockout import LockoutPolicy
from clearport.audit.domain import AuditEvent, Outcome
from clearport.audit.ports import AuditLog
from clearport.core.clock import Clock
from clearport.core.ids import new_id
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction, UnitOfWork


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

    async def auth_failed(
        self, tx: Transaction, *, origin: Origin, reason: str, resource: str, locked_out: bool
    ) -> None:
        """A failed authentication (access's `AuthFailureLog` port); `locked_out` says the
        address was locked out then (this request refused whatever its key)."""
        await self.record(
            tx,
            actor="anonymous",
            event_type="auth.failed",
            resource=resource,
            origin=origin,
            outcome=Outcome.FAILURE,
            details={"reason": reason, "locked_out": locked_out},
        )

    async def auth_locked_out(
        self,
        tx: Transaction,
        *,
        origin: Origin,
        subject: str,
        failures: int,
        policy: LockoutPolicy,
        locked_until: datetime,
    ) -> None:
        """An address locked out by repeated failures (access's `AuthFailureLog` port); the
        resource is what is locked out: the address, or the IPv6 /64 it belongs to."""
        await self.record(
            tx,
            actor="anonymous",
            event_type="auth.locked_out",
            resource=f"address:{subject}",
            origin=origin,
            outcome=Outcome.FAILURE,
            details={
                "failures": failures,
                "window_s": policy.window_s,
                "lockout_s": policy.lockout_s,
                "locked_until": locked_until.isoformat(),
            },
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
