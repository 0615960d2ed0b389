"""The dual-control ceremony over the local keyring's master key (decisions 0105, 0106):
split it into one component file per custodian, combine the components back. Both are audited
(who, when, how many parts, the key check value), never with a component.

Each audit row is written in the transaction that also writes the files (split) or the master
key (combine): a refused write rolls the row back, so the trail records what happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clearport.access.domain import Origin, Permission, Principal
from clearport.audit.domain import Outcome
from clearport.audit.service import Auditor
from clearport.core.errors import InvalidRequest
from clearport.core.uow import UnitOfWork
from clearport.vault.custody import combine_components, split_master_key
from clearport.vault.ports import ComponentSink, KeyCustody

RESOURCE = "master_key"


@dataclass(frozen=True, slots=True)
class SplitResult:
    kcv: str
    locations: list[str]  # one per component, in custodian order
    master_removed: bool


class KeyCeremony:
    def __init__(
        self,
        uow: UnitOfWork,
        custody: KeyCustody,
        component_sink: Callable[[Path], ComponentSink],
        auditor: Auditor,
    ) -> None:
        self._uow = uow
        self._custody = custody
        self._component_sink = component_sink
        self._auditor = auditor

    async def split(
        self,
        actor: Principal,
        origin: Origin,
        *,
        parts: int,
        directory: Path,
        remove_master: bool,
        run_by: str,
    ) -> SplitResult:
        """N components of the master key, each written where only its custodian reads it;
        `remove_master` then deletes `master.key`. `run_by` is who ran the command (the
        operating-system user), for the audit row."""
        actor.require(Permission.KEYS_MANAGE)
        components = split_master_key(self._custody.master_key(), parts)
        kcv = self._custody.kcv()
        async with self._uow.transaction() as tx:
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="vault.master_key_split",
                resource=RESOURCE,
                origin=origin,
                details={
                    "parts": parts,
                    "kcv": kcv,
                    "run_by": run_by,
                    "directory": str(directory),
                    "remove_master": remove_master,
                },
            )
            locations = self._component_sink(directory).write(components)
        removed = remove_master and self._custody.remove_master_key_file()
        return SplitResult(kcv, locations, removed)

    async def combine(
        self, actor: Principal, origin: Origin, components: list[bytes], *, run_by: str
    ) -> str:
        """Install the master key the components combine to, if it opens the keyring (its KCV
        matches); the KCV. A wrong combination writes nothing but a failure row."""
        actor.require(Permission.KEYS_MANAGE)
        master = combine_components(components)
        details: dict[str, object] = {"parts": len(components), "run_by": run_by}
        try:
            async with self._uow.transaction() as tx:
                await self._auditor.record(
                    tx,
                    actor=actor.actor,
                    event_type="vault.master_key_combined",
                    resource=RESOURCE,
                    origin=origin,
                    details={**details, "kcv": self._custody.kcv()},
                )
                self._custody.install_master_key(master)
        except ValueError as exc:
            async with self._uow.transaction() as tx:
                await self._auditor.record(
                    tx,
                    actor=actor.actor,
                    event_type="vault.master_key_combined",
                    resource=RESOURCE,
                    origin=origin,
                    outcome=Outcome.FAILURE,
                    details={**details, "reason": "kcv_mismatch"},
                )
            raise InvalidRequest(f"{exc}: nothing was written.", code="kcv_mismatch") from exc
        return self._custody.kcv()
