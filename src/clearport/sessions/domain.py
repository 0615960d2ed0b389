"""Console sessions and TOTP enrolments: records and rules, no I/O (decisions 1000-1002)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from clearport.access.domain import Principal, PrincipalKind, Role
from clearport.core.errors import invariant


class SessionStage(StrEnum):
    ENROLLING = "enrolling"  # the key was right, the TOTP secret is not confirmed yet
    ACTIVE = "active"  # signed in with key and TOTP code


class EnrolmentStatus(StrEnum):
    PENDING = "pending"  # shown once, not yet confirmed by a code
    ENROLLED = "enrolled"


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """A session ends after `idle_s` without a request, and `lifetime_s` after sign-in
    whatever happens (PCI DSS 8.2.8: 15 minutes idle)."""

    idle_s: int = 900
    lifetime_s: int = 12 * 3600

    def __post_init__(self) -> None:
        invariant(0 < self.idle_s <= self.lifetime_s, "idle timeout within the lifetime")

    def expires_at(self, signed_in_at: datetime) -> datetime:
        return signed_in_at + timedelta(seconds=self.lifetime_s)

    def idle_since(self, now: datetime) -> datetime:
        """A session last seen at or before this is over."""
        return now - timedelta(seconds=self.idle_s)


@dataclass(frozen=True, slots=True)
class Enrolment:
    key_id: str
    secret_id: str  # the vault's sealed secret
    status: EnrolmentStatus
    last_step: int  # the last TOTP time step accepted (a code is good once)


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A live session as a request sees it: whose key, which stage, the form token."""

    key_id: str
    role: str
    stage: SessionStage
    csrf_token: str

    @property
    def principal(self) -> Principal:
        """The operator as the services know it: the same principal as its API key."""
        return Principal(PrincipalKind.OPERATOR, self.key_id, role=Role(self.role))


def key_lockout_subject(key_id: str) -> str:
    """Failed TOTP codes count against the operator key (the `auth_failures` subject)."""
    return f"operator_key:{key_id}"
