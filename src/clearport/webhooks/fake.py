"""In-memory stand-ins for the webhooks' outside world, for tests: a resolver answering from a
table (no DNS), and sealed secrets kept in memory."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from clearport.core.ids import new_id
from clearport.core.uow import Transaction
from clearport.vault.domain import UndecryptableRecord
from clearport.webhooks.addresses import IPAddress


class FakeResolver:
    """`names` maps a host to the addresses it resolves to; any other name does not resolve."""

    def __init__(self, names: Mapping[str, Sequence[str]] | None = None) -> None:
        self.names: dict[str, list[IPAddress]] = {
            host: [ipaddress.ip_address(a) for a in addresses]
            for host, addresses in (names or {}).items()
        }
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int) -> Sequence[IPAddress]:
        self.asked.append(host)
        return list(self.names.get(host, []))


class FakeSecretKeeper:
    def __init__(self) -> None:
        self.secrets: dict[str, tuple[str, bytes]] = {}

    async def seal_secret(
        self, tx: Transaction, owner_id: str, purpose: str, plaintext: bytes
    ) -> str:
        secret_id = new_id("sec")
        self.secrets[secret_id] = (owner_id, plaintext)
        return secret_id

    async def open_secrets(
        self, tx: Transaction, owner_id: str, secret_ids: Sequence[str]
    ) -> dict[str, bytes]:
        opened = {}
        for secret_id in secret_ids:
            owner, plaintext = self.secrets.get(secret_id, ("", b""))
            if owner != owner_id:
                raise UndecryptableRecord(f"Secret {secret_id} does not exist for its owner.")
            opened[secret_id] = plaintext
        return opened

    async def destroy_secrets(self, tx: Transaction, secret_ids: Sequence[str]) -> None:
        for secret_id in secret_ids:
            self.secrets.pop(secret_id, None)
