"""Who is calling: a merchant's secret key or an operator's key."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from clearport.domain.errors import PermissionDenied
from clearport.domain.roles import Permission, Role, role_allows

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

    def require_merchant(self) -> str:
        if self.merchant_id is None:
            raise PermissionDenied("This operation needs a merchant secret key.")
        return self.merchant_id


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
