"""Principals, roles and API keys: who may do what. No I/O."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from clearport.core.errors import PermissionDenied


class Role(StrEnum):
    ADMIN = "admin"  # everything
    SUPPORT = "support"  # read only
    FINANCE = "finance"  # settlement, payouts, merchant pricing / payout / reserve terms
    SECURITY = "security"  # keys, audit, crypto-shredding


class Permission(StrEnum):
    MERCHANTS_READ = "merchants.read"
    MERCHANTS_CREATE = "merchants.create"
    MERCHANTS_STATUS = "merchants.status"
    MERCHANTS_TERMS = "merchants.terms"  # pricing, payout schedule, reserve
    KEYS_MANAGE = "keys.manage"
    AUDIT_READ = "audit.read"
    FINANCE_READ = "finance.read"
    FINANCE_WRITE = "finance.write"
    SECURITY_SHRED = "security.shred"
    WEBHOOKS_MANAGE = "webhooks.manage"  # platform endpoints, and every merchant's (admin)
    CONNECTORS_READ = "connectors.read"
    CONNECTORS_MANAGE = "connectors.manage"  # register and change connectors: admin only
    ROUTING_READ = "routing.read"  # routing and risk rule sets
    ROUTING_MANAGE = "routing.manage"  # write and activate rule sets: admin only
    ROUTING_SIMULATE = "routing.simulate"  # replay history through candidate rules


_READ = {
    Permission.MERCHANTS_READ,
    Permission.FINANCE_READ,
    Permission.CONNECTORS_READ,
    Permission.ROUTING_READ,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.SUPPORT: frozenset(_READ),
    Role.FINANCE: frozenset(
        _READ | {Permission.MERCHANTS_TERMS, Permission.FINANCE_WRITE, Permission.ROUTING_SIMULATE}
    ),
    Role.SECURITY: frozenset(
        _READ | {Permission.KEYS_MANAGE, Permission.AUDIT_READ, Permission.SECURITY_SHRED}
    ),
}


def role_allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


# Who may create operator keys of which role (docs/decisions/0018-role-grants.md). One rule for
# every pair: a granter needs KEYS_MANAGE, and may give only a subset of its own permissions, so
# no key can mint a key stronger than itself. From ROLE_PERMISSIONS above, it comes to:
#
#     granter \ target   admin  support  finance  security
#     admin                yes    yes      yes      yes
#     support              -      -        -        -        (no KEYS_MANAGE)
#     finance              -      -        -        -        (no KEYS_MANAGE)
#     security             -      yes      -        yes      (finance writes terms and payouts,
#                                                             admin has everything)
def role_may_grant(granter: Role, target: Role) -> bool:
    """True if a key of role `granter` may create an operator key of role `target`."""
    own = ROLE_PERMISSIONS[granter]
    return Permission.KEYS_MANAGE in own and ROLE_PERMISSIONS[target] <= own


_SECRET_RANDOM_BYTES = 24  # 192 bits


class PrincipalKind(StrEnum):
    MERCHANT = "merchant"
    OPERATOR = "operator"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    key_id: str
    merchant_id: str | None = None
    role: Role | None = None

    @property
    def actor(self) -> str:
        """The audit trail's name for this caller."""
        if self.kind is PrincipalKind.MERCHANT:
            return f"merchant:{self.merchant_id}/{self.key_id}"
        if self.kind is PrincipalKind.OPERATOR:
            return f"operator:{self.key_id}"
        return f"system:{self.key_id}"

    @property
    def idempotency_scope(self) -> str:
        return self.merchant_id if self.merchant_id is not None else self.key_id

    def require(self, permission: Permission) -> None:
        if self.kind is PrincipalKind.SYSTEM:
            return
        if self.role is None or not role_allows(self.role, permission):
            raise PermissionDenied("This key does not have the role required for this operation.")

    def may_grant(self, role: Role) -> bool:
        """Whether this caller may create an operator key of `role` (`role_may_grant`); the
        CLI (system) may create any."""
        if self.kind is PrincipalKind.SYSTEM:
            return True
        return self.role is not None and role_may_grant(self.role, role)

    def require_merchant(self) -> str:
        if self.merchant_id is None:
            raise PermissionDenied("This operation needs a merchant secret key.")
        return self.merchant_id

    def merchant_scope(self, permission: Permission) -> str | None:
        """Whose objects this caller reads: a merchant key its own merchant's; an operator, who
        must hold `permission`, every merchant's (None)."""
        if self.merchant_id is not None:
            return self.merchant_id
        self.require(permission)
        return None


SYSTEM_CLI = Principal(PrincipalKind.SYSTEM, key_id="cli")


def generate_secret(kind: PrincipalKind, mode: str) -> str:
    """A new key: `sk_test_…`/`sk_live_…` for merchants, `ok_…` for operators."""
    body = secrets.token_urlsafe(_SECRET_RANDOM_BYTES).replace("-", "x").replace("_", "y")
    if kind is PrincipalKind.MERCHANT:
        return f"sk_{mode}_{body}"
    return f"ok_{body}"


def display_of(secret: str) -> str:
    """What may be shown later: the prefix and the last four characters."""
    prefix = secret.rsplit("_", 1)[0] + "_"
    return f"{prefix}…{secret[-4:]}"


def hash_secret(server_secret: bytes, secret: str) -> bytes:
    return hmac.new(server_secret, secret.encode(), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    kind: str  # "merchant" | "operator"
    merchant_id: str | None
    role: str | None
    mode: str
    display: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def usable_at(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from; 'local' for the CLI."""

    ip: str = "local"
