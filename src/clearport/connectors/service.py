"""Registering and changing connectors (operators: admin writes, every operator role reads).

A connector is a name (what routing refers to, fixed once registered), a type (built in or a
plug-in, `catalog.py`) and settings its type checks. Credentials among the settings (the type
says which) are sealed by the vault for the platform (`PLATFORM_OWNER`) in the transaction that
stores the connector, and shown masked (`****` and the last four characters of a long one); a
PATCH that sends a credential's masked form back keeps the credential. Every change is audited
and announced
(`CacheTopic.CONNECTORS`), so every process rebuilds the connector before its next call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from clearport.access.domain import Origin, Permission, Principal
from clearport.audit.service import Auditor
from clearport.connectors.directory import BUILT_IN, CREDENTIALS_PURPOSE
from clearport.connectors.ports import (
    ConnectorDirectory,
    ConnectorRecord,
    ConnectorRepository,
    ConnectorType,
    CredentialVault,
)
from clearport.core.clock import Clock
from clearport.core.errors import InvalidRequest, InvalidState, NotFound
from clearport.core.ids import new_id, parse_id
from clearport.core.invalidation import CacheTopic, Invalidations
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction, UnitOfWork
from clearport.vault.domain import PLATFORM_OWNER

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_NAME = re.compile(NAME_PATTERN)
MASK = "****"


def masked(secret: str) -> str:
    """What a credential shows: its last four characters only when it is long enough that
    they give little away."""
    return MASK + secret[-4:] if len(secret) >= 16 else MASK


class ConnectorStatus:
    ENABLED = "enabled"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class NewConnector:
    name: str
    type: str
    settings: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ConnectorPatch:
    settings: dict[str, Any] | None = None  # merged: a key set to null is removed
    status: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectorView:
    record: ConnectorRecord
    breaker: str

    @property
    def shown_settings(self) -> dict[str, Any]:
        return {**self.record.settings, **self.record.secret_display}


class ConnectorService:
    def __init__(
        self,
        uow: UnitOfWork,
        repo: ConnectorRepository,
        vault: CredentialVault,
        types: Mapping[str, ConnectorType],
        directory: ConnectorDirectory,
        auditor: Auditor,
        clock: Clock,
        invalidations: Invalidations,
    ) -> None:
        self._uow = uow
        self._repo = repo
        self._vault = vault
        self.types = types
        self._directory = directory
        self._auditor = auditor
        self._clock = clock
        self._invalidations = invalidations

    def _view(self, record: ConnectorRecord) -> ConnectorView:
        return ConnectorView(record, self._directory.breaker_state(record.name))

    def _type(self, name: str) -> ConnectorType:
        kind = self.types.get(name)
        if kind is None:
            known = ", ".join(sorted(self.types))
            raise InvalidRequest(f"'{{field}}' must be one of: {known}.", field="type")
        return kind

    async def _seal(self, tx: Transaction, secret: Mapping[str, str]) -> str | None:
        """The credentials sealed for the platform, in the caller's transaction; their id."""
        if not secret:
            return None
        plaintext = json.dumps(dict(secret), sort_keys=True).encode()
        return await self._vault.seal_secret(tx, PLATFORM_OWNER, CREDENTIALS_PURPOSE, plaintext)

    async def create(self, actor: Principal, origin: Origin, new: NewConnector) -> ConnectorView:
        actor.require(Permission.CONNECTORS_MANAGE)
        if not _NAME.match(new.name):
            raise InvalidRequest(
                "'{field}' is 1 to 63 lower-case letters, digits, '-' or '_'.", field="name"
            )
        checked = self._type(new.type).check_settings(new.settings)
        if new.name == BUILT_IN:
            raise _duplicate()
        now = self._clock.now()
        async with self._uow.transaction() as tx:
            record = ConnectorRecord(
                id=new_id("con"),
                name=new.name,
                type=new.type,
                settings=checked.public,
                secret_display={k: masked(v) for k, v in checked.secret.items()},
                credentials_id=await self._seal(tx, checked.secret),
                enabled=True,
                version=1,
                created_at=now,
                updated_at=now,
            )
            if not await self._repo.insert(tx, record):
                raise _duplicate()
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="connector.created",
                resource=record.id,
                origin=origin,
                details={"name": record.name, "type": record.type},
            )
            await self._invalidations.publish(tx, CacheTopic.CONNECTORS, record.id)
        return self._view(record)

    async def names(self) -> frozenset[str]:
        """Every name routing may refer to: the registered connectors (enabled or not) and the
        built-in simulator."""
        async with self._uow.autocommit() as tx:
            records = await self._repo.all(tx)
        return frozenset({BUILT_IN, *(r.name for r in records)})

    async def get(self, actor: Principal, connector_id: str) -> ConnectorView:
        actor.require(Permission.CONNECTORS_READ)
        parse_id(connector_id, "con", field="id")
        async with self._uow.autocommit() as tx:
            record = await self._repo.get(tx, connector_id)
        if record is None:
            raise NotFound(f"No such connector: '{connector_id}'.", field="id")
        return self._view(record)

    async def list(self, actor: Principal, page: PageRequest) -> Page[ConnectorView]:
        actor.require(Permission.CONNECTORS_READ)
        async with self._uow.autocommit() as tx:
            records = await self._repo.list(tx, page)
        return Page([self._view(r) for r in records.data], records.has_more)

    async def update(
        self, actor: Principal, origin: Origin, connector_id: str, patch: ConnectorPatch
    ) -> ConnectorView:
        actor.require(Permission.CONNECTORS_MANAGE)
        parse_id(connector_id, "con", field="id")
        if patch.status not in (None, ConnectorStatus.ENABLED, ConnectorStatus.DISABLED):
            raise InvalidRequest("'{field}' must be 'enabled' or 'disabled'.", field="status")
        now = self._clock.now()
        async with self._uow.transaction() as tx:
            current = await self._repo.get(tx, connector_id, for_update=True)
            if current is None:
                raise NotFound(f"No such connector: '{connector_id}'.", field="id")
            settings, display = current.settings, current.secret_display
            credentials_id = current.credentials_id
            if patch.settings is not None:
                change = self._settings_after(current, patch.settings)
                settings, display = change.public, change.display
                if change.secret is not None:  # credentials changed: sealed anew (or none left)
                    kept = await self._opened(tx, current, change.kept)
                    credentials_id = await self._seal(tx, {**kept, **change.secret})
            updated = replace(
                current,
                settings=settings,
                secret_display=display,
                credentials_id=credentials_id,
                enabled=current.enabled
                if patch.status is None
                else patch.status == ConnectorStatus.ENABLED,
                version=current.version + 1,
                updated_at=now,
            )
            await self._repo.update(tx, updated)
            if current.credentials_id not in (None, updated.credentials_id):
                await self._vault.destroy_secrets(tx, [current.credentials_id])
            fields = [
                name
                for name, value in (("settings", patch.settings), ("status", patch.status))
                if value is not None
            ]
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="connector.updated",
                resource=connector_id,
                origin=origin,
                details={"fields": fields, "status": "enabled" if updated.enabled else "disabled"},
            )
            await self._invalidations.publish(tx, CacheTopic.CONNECTORS, connector_id)
        return self._view(updated)

    async def _opened(
        self, tx: Transaction, current: ConnectorRecord, keys: frozenset[str]
    ) -> dict[str, str]:
        """The current credentials named by `keys` (those a change keeps), in plaintext."""
        if not keys or current.credentials_id is None:
            return {}
        opened = await self._vault.open_secrets(tx, PLATFORM_OWNER, [current.credentials_id])
        stored = json.loads(opened[current.credentials_id])
        return {k: str(v) for k, v in stored.items() if k in keys}

    def _settings_after(self, current: ConnectorRecord, given: dict[str, Any]) -> _SettingsChange:
        """The settings a PATCH leaves, checked by the type: merged (null removes a setting);
        a credential not sent, or sent back masked, is kept."""
        kind = self._type(current.type)
        merged: dict[str, Any] = {**current.settings}
        kept: dict[str, str] = {}
        for key, shown in current.secret_display.items():
            if key not in given or given[key] == shown:
                kept[key] = shown
        for key, value in given.items():
            if key in kept:
                continue
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        # The kept credentials are checked in their masked form: present, within bounds.
        checked = kind.check_settings({**merged, **kept})
        secret = {k: v for k, v in checked.secret.items() if k not in kept}
        unchanged = not secret and set(kept) == set(current.secret_display)
        display = {**kept, **{k: masked(v) for k, v in secret.items()}}
        return _SettingsChange(
            public=checked.public,
            display=display,
            kept=frozenset(kept),
            secret=None if unchanged else secret,
        )


@dataclass(frozen=True, slots=True)
class _SettingsChange:
    public: dict[str, Any]
    display: dict[str, str]
    kept: frozenset[str]  # credentials the change keeps as they are
    secret: dict[str, str] | None  # new credentials; None: the credentials are unchanged


def _duplicate() -> InvalidState:
    return InvalidState(
        "A connector with this name exists (the built-in simulator is 'simulator').",
        code="duplicate_connector",
        field="name",
    )
