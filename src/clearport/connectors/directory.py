"""The connectors this process calls: built from the registry, cached, each behind its guard.

`RegistryDirectory` reads the registered connectors and opens their credentials (autocommit
reads), builds each with its type, and keeps the result until an
announcement (`CacheTopic.CONNECTORS`, published when a connector is created or changed) or the
TTL says it may be stale; then it reads again and rebuilds only what changed (a higher
`version`). The payment path therefore reads no table to find its connectors. Credentials are
sealed by the vault for the platform (`PLATFORM_OWNER`). A rebuilt
connector gets a fresh circuit breaker; the one it replaces is closed once calls on it have had
time to finish.

Candidates while no routing rule set is active (routing/): the names in
`CLEARPORT_CONNECTORS_DEFAULT_ORDER` when it is set (disabled or unknown names skipped);
otherwise every enabled registered connector, oldest first; and with no connector registered
at all, the built-in in-process simulator (`simulator`), so a fresh installation takes payments.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog

from clearport.connectors.domain import BreakerPolicy, CircuitBreaker
from clearport.connectors.guard import GuardedConnector
from clearport.connectors.ports import (
    BuildContext,
    Candidates,
    Connector,
    ConnectorRecord,
    ConnectorRepository,
    ConnectorType,
    CredentialVault,
)
from clearport.core.uow import Transaction, UnitOfWork
from clearport.vault.domain import PLATFORM_OWNER

log = structlog.get_logger("clearport.connectors")

BUILT_IN = "simulator"
CREDENTIALS_PURPOSE = "connector_credentials"
DEFAULT_RULE = "default"


@dataclass(frozen=True, slots=True)
class GuardOptions:
    policy: BreakerPolicy
    call_timeout_s: float


class FixedDirectory:
    """A fixed set of connectors in a fixed order (tests; a process without a registry)."""

    def __init__(
        self,
        connectors: Mapping[str, Connector],
        options: GuardOptions,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._guarded = {
            name: GuardedConnector(
                connector,
                CircuitBreaker(options.policy),
                timeout_s=options.call_timeout_s,
                monotonic=monotonic,
            )
            for name, connector in connectors.items()
        }

    async def candidates(self) -> Candidates:
        names = tuple(self._guarded)
        return Candidates(names, DEFAULT_RULE, _reason(len(names), "configured connectors"))

    def usable(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(n for n in names if n in self._guarded)

    async def connector(self, name: str) -> Connector | None:
        return self._guarded.get(name)

    def allows(self, name: str) -> bool:
        guarded = self._guarded.get(name)
        return guarded is not None and guarded.allows()

    def breaker_state(self, name: str) -> str:
        guarded = self._guarded.get(name)
        return "closed" if guarded is None else str(guarded.breaker_state())

    async def close(self) -> None:
        for guarded in self._guarded.values():
            await guarded.close()


def _reason(count: int, source: str) -> str:
    return "only connector" if count == 1 else f"{source}, in order"


@dataclass(slots=True)
class _Entry:
    record: ConnectorRecord | None  # None: the built-in simulator
    guarded: GuardedConnector


class RegistryDirectory:
    def __init__(
        self,
        uow: UnitOfWork,
        repo: ConnectorRepository,
        vault: CredentialVault,
        types: Mapping[str, ConnectorType],
        built_in: Connector,
        options: GuardOptions,
        *,
        default_order: tuple[str, ...] | None,
        ttl_s: float,
        monotonic: Callable[[], float] = time.monotonic,
        wrap: Callable[[Connector], Connector] | None = None,
    ) -> None:
        self._uow = uow
        self._repo = repo
        self._vault = vault
        self._types = types
        self._options = options
        self._default_order = default_order
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        # Around every connector built, under its guard (`connectors.faults`: injected faults).
        self._wrap = wrap
        self._entries: dict[str, _Entry] = {BUILT_IN: _Entry(None, self._guard(built_in))}
        self._records: Sequence[ConnectorRecord] = ()
        self._expires_at = 0.0
        self._stale = True
        self._loading = asyncio.Lock()
        self._station: int | None = None
        self._retired: set[GuardedConnector] = set()
        self._closing: set[asyncio.Task[None]] = set()

    def _guard(self, connector: Connector) -> GuardedConnector:
        return GuardedConnector(
            connector if self._wrap is None else self._wrap(connector),
            CircuitBreaker(self._options.policy),
            timeout_s=self._options.call_timeout_s,
            monotonic=self._monotonic,
        )

    # --- the cache, as a subscriber of CacheTopic.CONNECTORS ----------------------------------

    def evict(self, key: str) -> None:
        self._stale = True

    def clear(self) -> None:
        self._stale = True

    async def _fresh(self) -> None:
        if not self._stale and self._monotonic() < self._expires_at:
            return
        async with self._loading:
            if not self._stale and self._monotonic() < self._expires_at:
                return
            await self._load()

    async def _load(self) -> None:
        # Marked fresh before reading: an announcement arriving during the read marks it stale
        # again, so a change is never lost between the read and the swap.
        self._stale = False
        async with self._uow.autocommit() as tx:
            records = await self._repo.all(tx)
            if self._station is None:
                self._station = await self._repo.next_station(tx)
            changed = [r for r in records if self._needs_build(r)]
            credentials = {r.id: await self._open(tx, r) for r in changed}
        context = BuildContext(station=self._station)
        for record in changed:
            secret = credentials[record.id]
            try:
                if secret is None:
                    raise ValueError("its credentials do not open")
                built = self._types[record.type].build(
                    record.name, record.settings, secret, context
                )
            except Exception as exc:  # a broken connector must not stop the others
                log.error(
                    "connector_build_failed",
                    connector=record.name,
                    type=record.type,
                    error=type(exc).__name__,
                )
                continue
            old = self._entries.get(record.name)
            self._entries[record.name] = _Entry(record, self._guard(built))
            if old is not None:
                self._retire(old.guarded)
        registered = {r.name for r in records}
        for name in [n for n, e in self._entries.items() if e.record is not None]:
            if name not in registered:  # gone from the registry
                self._retire(self._entries.pop(name).guarded)
        self._records = records
        self._expires_at = self._monotonic() + self._ttl_s

    async def _open(self, tx: Transaction, record: ConnectorRecord) -> dict[str, str] | None:
        """The record's credentials (none: empty), or None when they do not open: that
        connector is left out, the others are built."""
        if record.credentials_id is None:
            return {}
        try:
            opened = await self._vault.open_secrets(tx, PLATFORM_OWNER, [record.credentials_id])
            loaded = json.loads(opened[record.credentials_id])
        except Exception as exc:
            log.error(
                "connector_credentials_failed", connector=record.name, error=type(exc).__name__
            )
            return None
        return {str(k): str(v) for k, v in dict(loaded).items()}

    def _needs_build(self, record: ConnectorRecord) -> bool:
        if record.type not in self._types:
            log.error("connector_type_unknown", connector=record.name, type=record.type)
            return False
        entry = self._entries.get(record.name)
        return (
            entry is None
            or entry.record is None
            or entry.record.id != record.id
            or entry.record.version < record.version
        )

    def _retire(self, guarded: GuardedConnector) -> None:
        """Closed once calls still on it have had their time."""
        self._retired.add(guarded)

        async def close_later() -> None:
            await asyncio.sleep(self._options.call_timeout_s + 1)
            self._retired.discard(guarded)
            await guarded.close()

        task = asyncio.get_running_loop().create_task(close_later())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # --- the port ------------------------------------------------------------------------------

    async def candidates(self) -> Candidates:
        await self._fresh()
        if self._default_order is not None:
            usable = tuple(n for n in self._default_order if self._usable(n))
            return Candidates(
                usable, DEFAULT_RULE, _reason(len(usable), "CLEARPORT_CONNECTORS_DEFAULT_ORDER")
            )
        if not self._records:
            return Candidates(
                (BUILT_IN,), DEFAULT_RULE, "no connector registered: built-in simulator"
            )
        usable = tuple(r.name for r in self._records if self._usable(r.name))
        return Candidates(
            usable, DEFAULT_RULE, _reason(len(usable), "registered connectors, oldest first")
        )

    def usable(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(n for n in names if self._usable(n))

    def _usable(self, name: str) -> bool:
        entry = self._entries.get(name)
        if entry is None:
            return False
        return entry.record is None or entry.record.enabled

    async def connector(self, name: str) -> Connector | None:
        await self._fresh()
        entry = self._entries.get(name)
        if entry is None:
            # Registered a moment ago in another process, perhaps: read once more.
            self._stale = True
            await self._fresh()
            entry = self._entries.get(name)
        return None if entry is None else entry.guarded

    def allows(self, name: str) -> bool:
        entry = self._entries.get(name)
        return entry is not None and entry.guarded.allows()

    def breaker_state(self, name: str) -> str:
        entry = self._entries.get(name)
        return "closed" if entry is None else str(entry.guarded.breaker_state())

    async def close(self) -> None:
        for task in list(self._closing):
            task.cancel()
        for guarded in [*(e.guarded for e in self._entries.values()), *self._retired]:
            try:
                await guarded.close()
            except Exception as exc:
                log.warning(
                    "connector_close_failed", connector=guarded.name, error=type(exc).__name__
                )
        self._retired.clear()
