"""The rule-set lifecycle over the in-memory table: versions, one active set, rollback by
activating again, the per-process copy dropped at once, and a set this process cannot read."""

from __future__ import annotations

from typing import Any

import pytest

from clearport.access.domain import SYSTEM_CLI, Origin
from clearport.audit.service import Auditor
from clearport.core.errors import InvalidRequest
from clearport.core.uow import FakeUnitOfWork
from clearport.risk.service import RiskRuleKind
from clearport.rulesets.domain import RuleSetStatus
from clearport.rulesets.fake import FakeRuleSetRepository
from clearport.rulesets.service import ActiveRules, RuleSets
from tests.unit.payments_world import TickingClock

ORIGIN = Origin("test")


class _Log:
    async def append(self, tx: Any, events: Any) -> None:
        pass


class _Announcements:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def publish(self, tx: Any, topic: Any, key: str) -> None:
        self.sent.append(key)


def _rules(kind: str = "amount_limit") -> dict[str, Any]:
    if kind == "amount_limit":
        return {
            "rules": [
                {
                    "name": "cap",
                    "mode": "enforce",
                    "kind": "amount_limit",
                    "currency": "usd",
                    "max_amount": 100,
                }
            ]
        }
    return {"rules": [{"name": "p", "mode": "enforce", "kind": kind, "params": {}}]}


async def test_versions_one_active_and_rollback() -> None:
    uow, repo, announced = FakeUnitOfWork(), FakeRuleSetRepository(), _Announcements()
    kind = RiskRuleKind({})
    active = ActiveRules(uow, repo, kind, ttl_s=3600)
    clock = TickingClock()
    sets = RuleSets(uow, repo, kind, Auditor(_Log(), clock), clock, announced, active)  # type: ignore[arg-type]
    first = await sets.create(SYSTEM_CLI, ORIGIN, _rules())
    second = await sets.create(SYSTEM_CLI, ORIGIN, _rules())
    assert (first.version, second.version) == (1, 2)
    assert await active.get() is None  # drafts decide nothing
    await sets.activate(SYSTEM_CLI, ORIGIN, first.id)
    assert (await active.get()).record.id == first.id  # type: ignore[union-attr]
    await sets.activate(SYSTEM_CLI, ORIGIN, second.id)
    # This process's copy was dropped at once; the announcement tells the others.
    assert (await active.get()).record.id == second.id  # type: ignore[union-attr]
    assert repo.records[first.id].status is RuleSetStatus.INACTIVE
    await sets.activate(SYSTEM_CLI, ORIGIN, first.id)  # the rollback
    assert (await active.get()).record.id == first.id  # type: ignore[union-attr]
    assert announced.sent == [first.id, second.id, first.id]
    with pytest.raises(InvalidRequest):
        await sets.create(SYSTEM_CLI, ORIGIN, _rules("not_installed"))


async def test_a_set_this_process_cannot_read_keeps_the_last_it_could() -> None:
    uow, repo = FakeUnitOfWork(), FakeRuleSetRepository()
    clock = TickingClock()
    readable = ActiveRules(uow, repo, RiskRuleKind({}), ttl_s=3600)
    sets = RuleSets(
        uow,
        repo,
        RiskRuleKind({}),
        Auditor(_Log(), clock),
        clock,  # type: ignore[arg-type]
        _Announcements(),
        readable,
    )
    good = await sets.create(SYSTEM_CLI, ORIGIN, _rules())
    await sets.activate(SYSTEM_CLI, ORIGIN, good.id)
    assert (await readable.get()).record.id == good.id  # type: ignore[union-attr]
    # Another process, with a plug-in this one lacks, activates a set naming it.
    bad_id = "rks_01KPLUGINONLYELSEWHERE0000"
    repo.records[bad_id] = good.__class__(
        bad_id, 3, RuleSetStatus.DRAFT, _rules("elsewhere"), clock.now()
    )
    await repo.activate(None, bad_id, clock.now())  # type: ignore[arg-type]
    readable.evict(bad_id)
    kept = await readable.get()
    assert kept is not None and kept.record.id == good.id
