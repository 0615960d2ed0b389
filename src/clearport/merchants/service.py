"""Onboarding merchants, changing their terms, status and payment settings, and managing API
keys."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from clearport.access.domain import (
    ApiKey,
    Origin,
    Permission,
    Principal,
    PrincipalKind,
    Role,
    display_of,
    generate_secret,
    hash_secret,
)
from clearport.access.ports import ApiKeyRepository
from clearport.audit.domain import Outcome
from clearport.audit.service import Auditor
from clearport.core.clock import Clock
from clearport.core.countries import parse_country
from clearport.core.errors import InvalidRequest, InvalidState, NotFound, PermissionDenied
from clearport.core.ids import new_id, parse_id
from clearport.core.invalidation import CacheTopic, Invalidations
from clearport.core.money import parse_currency
from clearport.core.pagination import Page, PageRequest
from clearport.core.uow import Transaction, UnitOfWork
from clearport.merchants.domain import (
    DEFAULT_PAYOUT_DELAY_DAYS,
    DEFAULT_PRICING,
    DEFAULT_RESERVE,
    Merchant,
    MerchantStatus,
    check_status_transition,
    validate_mcc,
    validate_name,
    validate_payout_delay,
)
from clearport.merchants.ports import MerchantRepository, PaymentSettingsRepository


@dataclass(frozen=True, slots=True)
class NewMerchant:
    name: str
    country: str
    mcc: str
    default_currency: str
    pricing: dict[str, Any] | None = None
    payout_delay_days: int | None = None
    reserve: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class MerchantPatch:
    name: str | None = None
    status: MerchantStatus | None = None
    pricing: dict[str, Any] | None = None
    payout_delay_days: int | None = None
    reserve: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown exactly once


class MerchantService:
    def __init__(
        self,
        uow: UnitOfWork,
        merchants: MerchantRepository,
        payment_settings: PaymentSettingsRepository,
        keys: ApiKeyRepository,
        auditor: Auditor,
        clock: Clock,
        server_secret: bytes,
        mode: str,
        invalidations: Invalidations,
    ) -> None:
        self._uow = uow
        self._merchants = merchants
        self._payment_settings = payment_settings
        self._keys = keys
        self._auditor = auditor
        self._clock = clock
        self._server_secret = server_secret
        self._mode = mode
        self._invalidations = invalidations

    async def create(self, actor: Principal, origin: Origin, new: NewMerchant) -> Merchant:
        actor.require(Permission.MERCHANTS_CREATE)
        merchant = Merchant(
            id=new_id("mer"),
            name=validate_name(new.name),
            country=parse_country(new.country),
            mcc=validate_mcc(new.mcc),
            default_currency=parse_currency(new.default_currency, field="default_currency"),
            status=MerchantStatus.ACTIVE,
            pricing=new.pricing if new.pricing is not None else dict(DEFAULT_PRICING),
            payout_delay_days=(
                validate_payout_delay(new.payout_delay_days)
                if new.payout_delay_days is not None
                else DEFAULT_PAYOUT_DELAY_DAYS
            ),
            reserve=new.reserve if new.reserve is not None else dict(DEFAULT_RESERVE),
            metadata=new.metadata or {},
            created_at=self._clock.now(),
        )
        async with self._uow.transaction() as tx:
            await self._merchants.insert(tx, merchant)
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="merchant.created",
                resource=merchant.id,
                origin=origin,
            )
        return merchant

    async def get(self, actor: Principal, merchant_id: str) -> Merchant:
        actor.require(Permission.MERCHANTS_READ)
        parse_id(merchant_id, "mer", field="id")
        async with self._uow.autocommit() as tx:
            merchant = await self._merchants.get(tx, merchant_id)
        if merchant is None:
            raise NotFound(f"No such merchant: '{merchant_id}'.", field="id")
        return merchant

    async def list(self, actor: Principal, page: PageRequest) -> Page[Merchant]:
        actor.require(Permission.MERCHANTS_READ)
        async with self._uow.autocommit() as tx:
            return await self._merchants.list(tx, page)

    async def update(
        self, actor: Principal, origin: Origin, merchant_id: str, patch: MerchantPatch
    ) -> Merchant:
        parse_id(merchant_id, "mer", field="id")
        if patch.status is not None or patch.name is not None or patch.metadata is not None:
            actor.require(Permission.MERCHANTS_STATUS)
        if (
            patch.pricing is not None
            or patch.payout_delay_days is not None
            or (patch.reserve is not None)
        ):
            actor.require(Permission.MERCHANTS_TERMS)
        async with self._uow.transaction() as tx:
            merchant = await self._merchants.get(tx, merchant_id, for_update=True)
            if merchant is None:
                raise NotFound(f"No such merchant: '{merchant_id}'.", field="id")
            before_status = merchant.status
            if patch.status is not None:
                check_status_transition(merchant.status, patch.status)
            updated = replace(
                merchant,
                name=validate_name(patch.name) if patch.name is not None else merchant.name,
                status=patch.status if patch.status is not None else merchant.status,
                pricing=patch.pricing if patch.pricing is not None else merchant.pricing,
                payout_delay_days=(
                    validate_payout_delay(patch.payout_delay_days)
                    if patch.payout_delay_days is not None
                    else merchant.payout_delay_days
                ),
                reserve=patch.reserve if patch.reserve is not None else merchant.reserve,
                metadata=patch.metadata if patch.metadata is not None else merchant.metadata,
            )
            await self._merchants.update(tx, updated)
            # Every process's cached gate (status, MCC, payment settings) goes at commit.
            await self._invalidations.publish(tx, CacheTopic.MERCHANT, merchant_id)
            changed = sorted(
                name
                for name in (
                    "name",
                    "status",
                    "pricing",
                    "payout_delay_days",
                    "reserve",
                    "metadata",
                )
                if getattr(patch, name) is not None
            )
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="merchant.updated",
                resource=merchant_id,
                origin=origin,
                details={"fields": changed},
            )
            if updated.status != before_status:
                await self._auditor.record(
                    tx,
                    actor=actor.actor,
                    event_type="merchant.status_changed",
                    resource=merchant_id,
                    origin=origin,
                    details={"from": str(before_status), "to": str(updated.status)},
                )
        return updated

    async def require_cvc(self, actor: Principal, merchant_id: str) -> bool:
        actor.require(Permission.MERCHANTS_READ)
        async with self._uow.transaction() as tx:
            if await self._merchants.get(tx, merchant_id) is None:
                raise NotFound(f"No such merchant: '{merchant_id}'.", field="id")
            return await self._payment_settings.require_cvc(tx, merchant_id)

    async def set_require_cvc(self, actor: Principal, merchant_id: str, value: bool) -> None:
        actor.require(Permission.MERCHANTS_TERMS)
        async with self._uow.transaction() as tx:
            if await self._merchants.get(tx, merchant_id) is None:
                raise NotFound(f"No such merchant: '{merchant_id}'.", field="id")
            await self._payment_settings.set_require_cvc(tx, merchant_id, value)
            await self._invalidations.publish(tx, CacheTopic.MERCHANT, merchant_id)

    async def create_key(
        self, actor: Principal, origin: Origin, merchant_id: str, expires_at: datetime | None
    ) -> IssuedKey:
        actor.require(Permission.KEYS_MANAGE)
        parse_id(merchant_id, "mer", field="id")
        now = self._clock.now()
        if expires_at is not None and expires_at <= now:
            raise InvalidRequest("'expires_at' must be in the future.", field="expires_at")
        secret = generate_secret(PrincipalKind.MERCHANT, self._mode)
        key = ApiKey(
            id=new_id("key"),
            kind="merchant",
            merchant_id=merchant_id,
            role=None,
            mode=self._mode,
            display=display_of(secret),
            created_at=now,
            expires_at=expires_at,
            revoked_at=None,
        )
        async with self._uow.transaction() as tx:
            merchant = await self._merchants.get(tx, merchant_id)
            if merchant is None:
                raise NotFound(f"No such merchant: '{merchant_id}'.", field="id")
            if merchant.status is MerchantStatus.CLOSED:
                raise InvalidState("A closed merchant cannot get new keys.", field="id")
            await self._keys.insert(tx, key, hash_secret(self._server_secret, secret), actor.actor)
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="api_key.created",
                resource=key.id,
                origin=origin,
                details={"merchant": merchant_id},
            )
        return IssuedKey(key, secret)

    async def list_keys(
        self, actor: Principal, merchant_id: str, page: PageRequest
    ) -> Page[ApiKey]:
        actor.require(Permission.KEYS_MANAGE)
        await self.get(actor, merchant_id)
        async with self._uow.autocommit() as tx:
            return await self._keys.list_for_merchant(tx, merchant_id, page)

    async def revoke_key(
        self, actor: Principal, origin: Origin, merchant_id: str, key_id: str
    ) -> ApiKey:
        actor.require(Permission.KEYS_MANAGE)
        parse_id(merchant_id, "mer", field="id")
        parse_id(key_id, "key", field="key_id")
        async with self._uow.transaction() as tx:
            key = await self._keys.get(tx, key_id)
            if key is None or key.merchant_id != merchant_id:
                raise NotFound(f"No such key: '{key_id}'.", field="key_id")
            key = await self._revoke(tx, key)
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="api_key.revoked",
                resource=key_id,
                origin=origin,
                details={"merchant": merchant_id},
            )
        return key

    async def usable_key(self, actor: Principal, secret: str) -> ApiKey | None:
        """The key `secret` is, if it exists and is neither revoked nor expired (`clearport
        run` checks the demo keys it kept); None otherwise. Nothing is recorded: this is not a
        login."""
        actor.require(Permission.KEYS_MANAGE)
        async with self._uow.autocommit() as tx:
            key = await self._keys.get_by_hash(tx, hash_secret(self._server_secret, secret))
        if key is None or not key.usable_at(self._clock.now()):
            return None
        return key

    async def create_operator_key(
        self, actor: Principal, origin: Origin, role: Role, expires_at: datetime | None = None
    ) -> IssuedKey:
        actor.require(Permission.KEYS_MANAGE)
        if not actor.may_grant(role):
            # Refused before anything is written but the attempt: a key reaching above its own
            # permissions is what an attacker holding it would try first.
            async with self._uow.transaction() as tx:
                await self._auditor.record(
                    tx,
                    actor=actor.actor,
                    event_type="operator_key.created",
                    resource="operator_keys",
                    origin=origin,
                    outcome=Outcome.FAILURE,
                    details={"role": str(role), "reason": "role_not_grantable"},
                )
            raise PermissionDenied(
                f"This key may not create '{role}' keys: a key grants only roles whose "
                "permissions it holds itself.",
                field="role",
            )
        secret = generate_secret(PrincipalKind.OPERATOR, self._mode)
        key = ApiKey(
            id=new_id("key"),
            kind="operator",
            merchant_id=None,
            role=str(role),
            mode=self._mode,
            display=display_of(secret),
            created_at=self._clock.now(),
            expires_at=expires_at,
            revoked_at=None,
        )
        async with self._uow.transaction() as tx:
            await self._keys.insert(tx, key, hash_secret(self._server_secret, secret), actor.actor)
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="operator_key.created",
                resource=key.id,
                origin=origin,
                details={"role": str(role)},
            )
        return IssuedKey(key, secret)

    async def revoke_operator_key(self, actor: Principal, origin: Origin, key_id: str) -> ApiKey:
        actor.require(Permission.KEYS_MANAGE)
        parse_id(key_id, "key", field="key_id")
        async with self._uow.transaction() as tx:
            key = await self._keys.get(tx, key_id)
            if key is None or key.kind != "operator":
                raise NotFound(f"No such key: '{key_id}'.", field="key_id")
            key = await self._revoke(tx, key)
            await self._auditor.record(
                tx,
                actor=actor.actor,
                event_type="operator_key.revoked",
                resource=key_id,
                origin=origin,
            )
        return key

    async def _revoke(self, tx: Transaction, key: ApiKey) -> ApiKey:
        """`key` revoked now (unless it already was); every process that caches keys forgets
        it when the transaction commits."""
        if key.revoked_at is not None:
            return key
        now = self._clock.now()
        await self._keys.revoke(tx, key.id, now)
        await self._invalidations.publish(tx, CacheTopic.API_KEY, key.id)
        return replace(key, revoked_at=now)
