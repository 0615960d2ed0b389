"""A merchant's payout bank account: stored sealed, shown masked, decrypted only for payouts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from clearport.access.domain import Origin, Permission, Principal
from clearport.audit.service import Auditor
from clearport.core.errors import InvalidState, NotFound
from clearport.core.ids import new_id, parse_id
from clearport.core.money import parse_currency
from clearport.core.uow import Transaction, UnitOfWork
from clearport.merchants.domain import MerchantStatus
from clearport.merchants.ports import MerchantRepository
from clearport.vault.data_keys import DataKeys
from clearport.vault.domain import (
    BankAccount,
    BankAccountRecord,
    BankAccountView,
    RecordKind,
    bank_account_display,
    bank_account_from_payload,
    bank_account_payload,
    validate_bank_account,
)
from clearport.vault.ports import VaultRepository


class BankAccounts:
    def __init__(
        self,
        uow: UnitOfWork,
        repo: VaultRepository,
        merchants: MerchantRepository,
        data_keys: DataKeys,
        auditor: Auditor,
    ) -> None:
        self._uow = uow
        self._repo = repo
        self._merchants = merchants
        self._data_keys = data_keys
        self._auditor = auditor

    async def set_bank_account(
        self, actor: Principal, origin: Origin, merchant_id: str, account: BankAccount
    ) -> BankAccountView:
        actor.require(Permission.FINANCE_WRITE)
        parse_id(merchant_id, "mer", field="id")
        currency = parse_currency(account.currency, field="currency")
        account = validate_bank_account(replace(account, currency=currency))
        async with self._uow.transaction() as tx:
            merchant = await self._merchants.get(tx, merchant_id, for_update=True)
            if merchant is None:
                raise NotFound(f"No such merchant: '{merchant_id}'.", field="id")
            if merchant.status is MerchantStatus.CLOSED:
                raise InvalidState("A closed merchant cannot get a bank account.", field="id")
            record_id = new_id("ba")
            sealed = await self._data_keys.encrypt(
                tx, merchant_id, RecordKind.BANK_ACCOUNT, record_id, bank_account_payload(account)
            )
            stored = await self._repo.upsert_bank_account(
                tx,
                BankAccountRecord(
                    account=BankAccountView(
                        id=record_id,
                        merchant_id=merchant_id,
                        country=account.country,
                        currency=account.currency,
                        account_holder=account.account_holder,
                        scheme=account.scheme,
                        bic=account.bic,
                        display=bank_account_display(account),
                    ),
                    sealed=sealed,
                ),
            )
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="bank_account.updated",
                resource=merchant_id,
                origin=origin,
                details={"bank_account": record_id, "scheme": account.scheme},
            )
        return stored.account

    async def get_bank_account(self, actor: Principal, merchant_id: str) -> BankAccountView:
        actor.require(Permission.MERCHANTS_READ)
        parse_id(merchant_id, "mer", field="id")
        async with self._uow.transaction() as tx:
            record = await self._repo.get_bank_account(tx, merchant_id)
        if record is None:
            raise NotFound("This merchant has no bank account.", field="id")
        return record.account

    async def bank_account_for_payout(
        self, tx: Transaction, merchant_id: str
    ) -> BankAccount | None:
        """The decrypted payout destination (settlement writes it into payout files)."""
        record = await self._repo.get_bank_account(tx, merchant_id)
        return None if record is None else await self._decrypted(tx, record)

    async def bank_accounts_for_payouts(
        self, tx: Transaction, merchant_ids: Sequence[str]
    ) -> dict[str, BankAccount]:
        """The decrypted payout destinations of those of `merchant_ids` that have one: the
        accounts in one read (a night's payout files name tens of thousands of merchants)."""
        return {
            record.account.merchant_id: await self._decrypted(tx, record)
            for record in await self._repo.get_bank_accounts(tx, merchant_ids)
        }

    async def _decrypted(self, tx: Transaction, record: BankAccountRecord) -> BankAccount:
        account = record.account
        merchant_id = account.merchant_id
        payload = await self._data_keys.decrypt(
            tx, merchant_id, RecordKind.BANK_ACCOUNT, account.id, record.sealed
        )
        return bank_account_from_payload(
            payload,
            country=account.country,
            currency=account.currency,
            account_holder=account.account_holder,
            bic=account.bic,
        )
