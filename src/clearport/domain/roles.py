"""Who may do what. Operators have one role each; merchants act only on their own objects."""

from __future__ import annotations

from enum import StrEnum


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


_READ = {Permission.MERCHANTS_READ, Permission.FINANCE_READ}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.SUPPORT: frozenset(_READ),
    Role.FINANCE: frozenset(_READ | {Permission.MERCHANTS_TERMS, Permission.FINANCE_WRITE}),
    Role.SECURITY: frozenset(
        _READ | {Permission.KEYS_MANAGE, Permission.AUDIT_READ, Permission.SECURITY_SHRED}
    ),
}


def role_allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]
