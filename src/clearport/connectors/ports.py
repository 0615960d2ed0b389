"""The connector port every acquirer implements, the port a connector type (built in or a
plug-in) implements to be registered, and what the connector services need from outside."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from clearport.connectors.domain import ConnectorCard, ConnectorResult
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction


class Connector(Protocol):
    """An acquirer or processor. Every call carries our reference (the attempt id): the
    processor keeps it, so a repeated call is recognised and a lost answer can be resolved
    afterwards. Implementations bound every call with explicit connect and read timeouts and
    answer a transport failure as `UNREACHABLE` (nothing was sent) or `UNKNOWN` (it was sent);
    the caller bounds each call again from outside.

    A call whose answer was lost is resolved in two steps (payments/lost.py): `status`, a
    harmless inquiry, for connectors that have one (`inquires`); then, if that does not settle
    it, `reverse`, which cancels whatever the processor did under that reference and is safe to
    repeat. `authorize` with `capture=True` is a sale."""

    name: str
    inquires: bool  # whether `status` asks the processor (ISO 8583 has no inquiry: False)

    async def authorize(
        self,
        reference: str,
        amount_minor: int,
        currency: str,
        card: ConnectorCard,
        *,
        capture: bool,
    ) -> ConnectorResult: ...
    async def capture(
        self, reference: str, authorization: str, amount_minor: int, currency: str
    ) -> ConnectorResult: ...
    async def void(self, reference: str, authorization: str) -> ConnectorResult: ...
    async def refund(
        self, reference: str, capture_reference: str, amount_minor: int, currency: str
    ) -> ConnectorResult: ...
    async def status(self, reference: str) -> ConnectorResult: ...
    async def reverse(
        self, reference: str, original: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        """Cancel what the call `original` did, whatever it was and whether or not it arrived
        (a late arrival is refused). APPROVED once the processor has acknowledged it."""
        ...

    async def close(self) -> None:
        """Release connections; calls after this are not expected."""
        ...


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a connector type gets besides its settings when it builds a connector."""

    # A number no other live Clearport process holds (from a database sequence, allocated once
    # per process), for identifiers that must not collide across processes (ISO 8583's DE41
    # terminal ids and DE37 retrieval reference numbers).
    station: int


@dataclass(frozen=True, slots=True)
class CheckedSettings:
    """A connector's settings as its type accepts them: what may be shown, and the credentials,
    which are stored encrypted and shown masked."""

    public: dict[str, Any]
    secret: dict[str, str] = field(default_factory=dict)


class ConnectorType(Protocol):
    """A kind of connector (`type` in `POST /v1/connectors`). Built-in types live in their
    folders; third-party ones register an object like this under the `clearport.connectors`
    entry-point group, named by its `name`."""

    name: str

    def settings_schema(self) -> dict[str, Any]:
        """The JSON Schema of `settings` (the OpenAPI document shows it)."""
        ...

    def check_settings(self, settings: Mapping[str, Any]) -> CheckedSettings:
        """Validate `settings`; an `InvalidRequest` names the setting (`("settings", "url")`).
        Never puts a setting's value in an error message."""
        ...

    def build(
        self,
        name: str,
        settings: Mapping[str, Any],
        secret: Mapping[str, str],
        context: BuildContext,
    ) -> Connector:
        """A connector named `name`; it opens connections lazily, on its first call."""
        ...


@dataclass(frozen=True, slots=True)
class ConnectorRecord:
    """A registered connector as stored: credentials only sealed (in the vault), and their
    masked display."""

    id: str
    name: str
    type: str
    settings: dict[str, Any]
    secret_display: dict[str, str]
    credentials_id: str | None
    enabled: bool
    version: int  # grows with every change: a process rebuilds what it holds when it grows
    created_at: datetime
    updated_at: datetime


class ConnectorRepository(Protocol):
    async def insert(self, tx: Transaction, record: ConnectorRecord) -> bool:
        """False if the name is taken."""
        ...

    async def update(self, tx: Transaction, record: ConnectorRecord) -> None: ...
    async def get(
        self, tx: Transaction, connector_id: str, *, for_update: bool = False
    ) -> ConnectorRecord | None: ...
    async def list(self, tx: Transaction, page: PageRequest) -> Page[ConnectorRecord]: ...
    async def all(self, tx: Transaction) -> Sequence[ConnectorRecord]:
        """Every registered connector, oldest first (creation order is the default order)."""
        ...

    async def next_station(self, tx: Transaction) -> int: ...


class CredentialVault(Protocol):
    """Connector credentials sealed by the vault for the platform (`vault.service.VaultService`,
    `vault.domain.PLATFORM_OWNER`): under the platform's DEK, like a card under a merchant's."""

    async def seal_secret(
        self, tx: Transaction, owner_id: str, purpose: str, plaintext: bytes
    ) -> str: ...
    async def open_secrets(
        self, tx: Transaction, owner_id: str, secret_ids: Sequence[str]
    ) -> dict[str, bytes]: ...
    async def destroy_secrets(self, tx: Transaction, secret_ids: Sequence[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class Candidates:
    """The connectors a payment may go to, in order, and why these."""

    names: tuple[str, ...]
    rule: str
    reason: str


class ConnectorDirectory(Protocol):
    """The connectors this process can call, each behind its guard (`guard.py`)."""

    async def candidates(self) -> Candidates:
        """The configured default order (may be empty): what payments use while no routing
        rule set is active."""
        ...

    def usable(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """Those of `names` this process can send payments to (registered and enabled, or the
        built-in simulator), in their order, as of the last `candidates()`: no read."""
        ...

    async def connector(self, name: str) -> Connector | None:
        """The connector named `name`, enabled or not (its payments still need it)."""
        ...

    def allows(self, name: str) -> bool:
        """Whether `name`'s circuit breaker lets calls out now."""
        ...

    def breaker_state(self, name: str) -> str:
        """`closed`, `open` or `half_open`, in this process."""
        ...

    async def close(self) -> None: ...
