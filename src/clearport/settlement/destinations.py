"""Payout destinations from the vault: the decrypted bank account, unwrapped only here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from clearport.core.uow import Transaction
from clearport.settlement.ports import PayoutDestination


class _BankAccountSource(Protocol):
    async def bank_accounts_for_payouts(
        self, tx: Transaction, merchant_ids: Sequence[str]
    ) -> Mapping[str, Any]: ...


def _reveal(value: Any) -> str | None:
    if value is None:
        return None
    reveal = getattr(value, "reveal", None)
    return str(reveal()) if callable(reveal) else str(value)


class VaultPayoutDestinations:
    def __init__(self, vault: _BankAccountSource) -> None:
        self._vault = vault

    async def destinations(
        self, tx: Transaction, merchant_ids: Sequence[str]
    ) -> Mapping[str, PayoutDestination]:
        accounts = await self._vault.bank_accounts_for_payouts(tx, merchant_ids)
        return {merchant_id: _destination(account) for merchant_id, account in accounts.items()}


def _destination(account: Any) -> PayoutDestination:
    return PayoutDestination(
        account_holder=account.account_holder,
        currency=account.currency,
        routing_number=_reveal(account.routing_number),
        account_number=_reveal(account.account_number),
        iban=_reveal(account.iban),
        bic=_reveal(account.bic),
    )


class NoPayoutDestinations:
    """Until a bank account source is wired: every payout waits, flagged."""

    async def destinations(
        self, tx: Transaction, merchant_ids: Sequence[str]
    ) -> Mapping[str, PayoutDestination]:
        return {}
