"""The exception queue: reading it (with its ageing, for /metrics) and resolving an exception
(one transaction: the resolution, its ledger entry or adjustment, the audit record)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from clearport.access.domain import Origin, Permission, Principal
from clearport.adjustments.service import AdjustmentService
from clearport.audit.service import Auditor
from clearport.core.clock import Clock
from clearport.core.errors import InvalidRequest, NotFound, invariant
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import UnitOfWork
from clearport.ledger.service import LedgerService
from clearport.reconciliation.domain import (
    ACTIONS,
    ReconciliationException,
    Resolution,
    adjustment_reason,
    check_note,
    check_resolvable,
    write_off_transfer,
)
from clearport.reconciliation.ports import ReconciliationStore


class ExceptionQueue:
    def __init__(
        self,
        uow: UnitOfWork,
        store: ReconciliationStore,
        ledger: LedgerService,
        adjustments: AdjustmentService,
        auditor: Auditor,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._store = store
        self._ledger = ledger
        self._adjustments = adjustments
        self._auditor = auditor
        self._clock = clock

    async def resolve(
        self,
        actor: Principal,
        origin: Origin,
        exception_id: str,
        action: Resolution,
        note: str,
    ) -> ReconciliationException:
        actor.require(Permission.FINANCE_WRITE)
        if action not in ACTIONS:
            raise InvalidRequest("'{field}' must be accept, adjust or write_off.", field="action")
        check_note(note)
        async with self._uow.transaction() as tx:
            found = await self._store.get_exception(tx, exception_id, lock=True)
            if found is None:
                raise NotFound(f"No such reconciliation exception: '{exception_id}'.", field="id")
            check_resolvable(found, action)
            adjustment_id = balance_transaction = None
            if action is Resolution.ADJUST:
                merchant_id, difference = found.merchant_id, found.difference
                if merchant_id is None or difference is None:
                    invariant(False, "check_resolvable lets adjust through with both only")
                    raise AssertionError  # pragma: no cover - unreachable
                adjustment = await self._adjustments.create_in(
                    tx,
                    actor,
                    origin,
                    merchant_id,
                    difference,
                    found.currency,
                    adjustment_reason(found, note),
                )
                adjustment_id = adjustment.id
                balance_transaction = adjustment.balance_transaction
            elif action is Resolution.WRITE_OFF:
                posted = await self._ledger.post(tx, [write_off_transfer(found)])
                balance_transaction = posted[0].txn_id
            resolved = await self._store.resolve(
                tx,
                found,
                action,
                note=note,
                actor=actor.actor,
                now=self._clock.now(),
                adjustment_id=adjustment_id,
                balance_transaction=balance_transaction,
            )
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="reconciliation_exception.resolved",
                resource=exception_id,
                origin=origin,
                details={
                    "action": str(action),
                    "kind": str(found.kind),
                    "difference": found.difference,
                    "currency": found.currency,
                },
            )
        return resolved

    async def get_exception(self, actor: Principal, exception_id: str) -> ReconciliationException:
        actor.require(Permission.FINANCE_READ)
        async with self._uow.autocommit() as tx:
            found = await self._store.get_exception(tx, exception_id, lock=False)
        if found is None:
            raise NotFound(f"No such reconciliation exception: '{exception_id}'.", field="id")
        return found

    async def list_exceptions(
        self, actor: Principal, page: PageRequest, filters: Mapping[str, Any]
    ) -> Page[ReconciliationException]:
        """Filters: run, kind, status, older_than_days (created that many days ago or more)."""
        actor.require(Permission.FINANCE_READ)
        query = dict(filters)
        older = query.pop("older_than_days", None)
        if older is not None:
            aged = self._clock.now() - timedelta(days=int(older))
            given = query.get("created_lt")
            query["created_lt"] = aged if given is None else min(aged, given)
        async with self._uow.autocommit() as tx:
            return await self._store.list_exceptions(tx, page, query)

    async def open_exceptions(self) -> list[tuple[str, str, int]]:
        """(kind, age bucket, count) of open exceptions: for /metrics."""
        async with self._uow.autocommit() as tx:
            return await self._store.open_by_kind_and_age(tx, self._clock.now())
