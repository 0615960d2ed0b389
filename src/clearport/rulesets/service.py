"""The lifecycle of rule sets of one kind, and this process's copy of the active one.

Creating a set parses and checks it first (a 400 saves nothing); activating checks it again
(what it names must still exist: a plug-in's condition may be gone), makes it the active set and
announces it (`kind.topic`) in the same transaction, so every process reads the new set before
its next payment.
`ActiveRules` is that per-process copy: no table read on the payment path, and a TTL bounding
what a process that missed the announcement keeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import structlog

from clearport.access.domain import Origin, Principal
from clearport.audit.service import Auditor
from clearport.core.clock import Clock
from clearport.core.errors import ClearportError, NotFound
from clearport.core.ids import new_id, parse_id
from clearport.core.invalidation import CacheSubscriber, Invalidations
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import UnitOfWork
from clearport.rulesets.domain import ActiveSet, RuleSetRecord, RuleSetStatus
from clearport.rulesets.ports import RuleKind, RuleSetRepository

T = TypeVar("T")
log = structlog.get_logger("clearport.rulesets")


class RuleSets(Generic[T]):
    def __init__(
        self,
        uow: UnitOfWork,
        repo: RuleSetRepository,
        kind: RuleKind[T],
        auditor: Auditor,
        clock: Clock,
        invalidations: Invalidations,
        local: CacheSubscriber,
    ) -> None:
        self._uow = uow
        self._repo = repo
        self.kind = kind
        # This process's copy, dropped at once: the announcement reaches it a moment later.
        self._local = local
        self._auditor = auditor
        self._clock = clock
        self._invalidations = invalidations

    async def check(self, actor: Principal, body: dict[str, Any]) -> None:
        """The checker's verdict on a set, saving nothing: what `create` would refuse, it
        raises (the console's editor shows it before saving)."""
        actor.require(self.kind.write)
        await self._checked(new_id(self.kind.prefix), body)

    async def create(self, actor: Principal, origin: Origin, body: dict[str, Any]) -> RuleSetRecord:
        actor.require(self.kind.write)
        rule_set_id = new_id(self.kind.prefix)
        await self._checked(rule_set_id, body)
        async with self._uow.transaction() as tx:
            record = RuleSetRecord(
                id=rule_set_id,
                version=await self._repo.next_version(tx),
                status=RuleSetStatus.DRAFT,
                body=body,
                created_at=self._clock.now(),
            )
            await self._repo.insert(tx, record)
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type=f"{self.kind.audit_prefix}.created",
                resource=record.id,
                origin=origin,
                details={"version": record.version},
            )
        return record

    async def activate(self, actor: Principal, origin: Origin, rule_set_id: str) -> RuleSetRecord:
        actor.require(self.kind.write)
        parse_id(rule_set_id, self.kind.prefix, field="id")
        async with self._uow.autocommit() as tx:
            found = await self._repo.get(tx, rule_set_id)
        if found is None:
            raise self._missing(rule_set_id)
        await self.kind.check(self.kind.parse(found.id, found.version, found.body))
        now = self._clock.now()
        async with self._uow.transaction() as tx:
            record = await self._repo.get(tx, rule_set_id, for_update=True)
            if record is None:
                raise self._missing(rule_set_id)
            if record.status is RuleSetStatus.ACTIVE:
                return record  # already the active set: nothing changes, nothing announced
            previous = await self._repo.active(tx)
            await self._repo.activate(tx, rule_set_id, now)
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type=f"{self.kind.audit_prefix}.activated",
                resource=rule_set_id,
                origin=origin,
                details={
                    "version": record.version,
                    "replaces": None if previous is None else previous.id,
                },
            )
            await self._invalidations.publish(tx, self.kind.topic, rule_set_id)
            activated = await self._repo.get(tx, rule_set_id)
        self._local.evict(rule_set_id)
        if activated is None:
            raise self._missing(rule_set_id)
        return activated

    async def get(self, actor: Principal, rule_set_id: str) -> RuleSetRecord:
        actor.require(self.kind.read)
        parse_id(rule_set_id, self.kind.prefix, field="id")
        async with self._uow.autocommit() as tx:
            record = await self._repo.get(tx, rule_set_id)
        if record is None:
            raise self._missing(rule_set_id)
        return record

    async def list(self, actor: Principal, page: PageRequest) -> Page[RuleSetRecord]:
        actor.require(self.kind.read)
        async with self._uow.autocommit() as tx:
            return await self._repo.list(tx, page)

    async def rules_of(self, actor: Principal, rule_set_id: str) -> T:
        """A stored set's rules (a simulation's candidate by id)."""
        record = await self.get(actor, rule_set_id)
        return self.kind.parse(record.id, record.version, record.body)

    async def _checked(self, rule_set_id: str, body: dict[str, Any]) -> T:
        rules = self.kind.parse(rule_set_id, 0, body)
        await self.kind.check(rules)
        return rules

    def _missing(self, rule_set_id: str) -> NotFound:
        return NotFound(f"No such {self.kind.noun}: '{rule_set_id}'.", field="id")


class ActiveRules(Generic[T]):
    """This process's copy of the active set of one kind; a subscriber of its topic."""

    def __init__(
        self,
        uow: UnitOfWork,
        repo: RuleSetRepository,
        kind: RuleKind[T],
        *,
        ttl_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uow = uow
        self._repo = repo
        self._kind = kind
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._current: ActiveSet[T] | None = None
        self._stale = True
        self._expires_at = 0.0
        self._loading = asyncio.Lock()

    def evict(self, key: str) -> None:
        self._stale = True

    def clear(self) -> None:
        self._stale = True

    async def get(self) -> ActiveSet[T] | None:
        if not self._stale and self._monotonic() < self._expires_at:
            return self._current
        async with self._loading:
            if self._stale or self._monotonic() >= self._expires_at:
                # Fresh before reading: an announcement during the read marks it stale again.
                self._stale = False
                async with self._uow.autocommit() as tx:
                    record = await self._repo.active(tx)
                self._current = None if record is None else self._parsed(record)
                self._expires_at = self._monotonic() + self._ttl_s
        return self._current

    def _parsed(self, record: RuleSetRecord) -> ActiveSet[T] | None:
        """The active set's rules; if this process cannot read them (a plug-in its risk rules
        name is not installed here), the set it had before, said loudly: payments keep flowing
        under the last rules this process could apply."""
        try:
            return ActiveSet(record, self._kind.parse(record.id, record.version, record.body))
        except ClearportError as exc:
            log.error(
                "rule_set_unusable",
                rule_set=record.id,
                version=record.version,
                error=exc.message,
                keeps=None if self._current is None else self._current.record.id,
            )
            return self._current
