"""Rule sets for the unit tier: an in-memory table, and a fixed active set."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Generic, TypeVar

from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.rulesets.domain import ActiveSet, RuleSetRecord, RuleSetStatus

T = TypeVar("T")


class FixedActiveRules(Generic[T]):
    """An active set that a test sets (None: no active set), read without a transaction."""

    def __init__(self, current: ActiveSet[T] | None = None) -> None:
        self.current = current

    async def get(self) -> ActiveSet[T] | None:
        return self.current


class FakeRuleSetRepository:
    def __init__(self) -> None:
        self.records: dict[str, RuleSetRecord] = {}
        self._version = 0

    async def next_version(self, tx: Transaction) -> int:
        self._version += 1
        return self._version

    async def insert(self, tx: Transaction, record: RuleSetRecord) -> None:
        self.records[record.id] = record

    async def get(
        self, tx: Transaction, rule_set_id: str, *, for_update: bool = False
    ) -> RuleSetRecord | None:
        return self.records.get(rule_set_id)

    async def active(self, tx: Transaction) -> RuleSetRecord | None:
        return next((r for r in self.records.values() if r.status is RuleSetStatus.ACTIVE), None)

    async def list(self, tx: Transaction, page: PageRequest) -> Page[RuleSetRecord]:
        ordered = sorted(self.records.values(), key=lambda r: r.id, reverse=True)
        return Page(ordered[: page.limit], len(ordered) > page.limit)

    async def activate(self, tx: Transaction, rule_set_id: str, now: datetime) -> None:
        for key, record in list(self.records.items()):
            if record.status is RuleSetStatus.ACTIVE:
                self.records[key] = replace(
                    record, status=RuleSetStatus.INACTIVE, deactivated_at=now
                )
        self.records[rule_set_id] = replace(
            self.records[rule_set_id], status=RuleSetStatus.ACTIVE, activated_at=now
        )
