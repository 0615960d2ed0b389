"""Payout destinations from the vault: the decrypted bank account, unwrapped only here."""

from __future__ import annotations

from typing import Any, Protocol

from clearport.core.uow import Transaction
from clearport.settlement.ports import PayoutDestination


class _BankAccountSource(Protocol):
    async def bank_account_for_payout(self, tx: Transaction, merchant_id: str) -> Any: ...


def _reveal(value: Any) -> str | None:
    if value is None:
        return None
    reveal = getattr(value, "reveal", None)
    return str(reveal()) if callable(reveal) else str(value)


class VaultPayoutDestinations:
    def __init__(self, vault: _BankAccountSource) -> None:
        self._vault = vault

    async def destination(self, tx: Transaction, merchant_id: str) -> PayoutDestination | None:
        account = await self._vault.bank_account_for_payout(tx, merchant_id)
        if account is None:
            return None
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

    async def destination(self, tx: Transaction, merchant_id: str) -> PayoutDestination | None:
        return None
