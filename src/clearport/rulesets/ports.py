"""What the rule-set lifecycle needs: its table, and the rules of its kind."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, TypeVar

from clearport.access.domain import Permission
from clearport.core.invalidation import CacheTopic
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction
from clearport.rulesets.domain import ActiveSet, RuleSetRecord

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class RuleSetRepository(Protocol):
    async def next_version(self, tx: Transaction) -> int: ...
    async def insert(self, tx: Transaction, record: RuleSetRecord) -> None: ...
    async def get(
        self, tx: Transaction, rule_set_id: str, *, for_update: bool = False
    ) -> RuleSetRecord | None: ...
    async def active(self, tx: Transaction) -> RuleSetRecord | None: ...
    async def list(self, tx: Transaction, page: PageRequest) -> Page[RuleSetRecord]: ...
    async def activate(self, tx: Transaction, rule_set_id: str, now: datetime) -> None:
        """`rule_set_id` becomes the active set; the one active before, inactive."""
        ...


class ActiveSource(Protocol[T]):
    """The active set of a kind and its rules (`service.ActiveRules`: cached per process)."""

    async def get(self) -> ActiveSet[T] | None: ...


class RuleKind(Protocol[T_co]):
    """Routing's or risk's rules: how a body is read and checked."""

    prefix: str  # of the ids: "rrs", "rks"
    noun: str  # for messages and audit events: "routing rule set"
    audit_prefix: str  # "routing_rule_set"
    topic: CacheTopic
    read: Permission
    write: Permission

    def parse(self, rule_set_id: str, version: int, body: dict[str, Any]) -> T_co:
        """The rules of a body (a 400 naming the field for a bad one)."""
        ...

    async def check(self, rules: Any) -> None:
        """The static checks a set must pass before it is saved or activated (400 naming the
        rule and why)."""
        ...
