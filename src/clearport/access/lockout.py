"""Locking a client address out after repeated failed authentications (PCI DSS 8.3.4: after at
most 10 failures, for at least 30 minutes). Rules and records, no I/O; docs/decisions/0015."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime

from clearport.core.errors import invariant

# An IPv6 host picks its interface identifier (privacy addresses, SLAAC): one client holds a
# whole /64, so counting per address would give it 2^64 budgets.
_IPV6_CLIENT_PREFIX_LEN = 64


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """`max_failures` failed authentications from one subject within any `window_s` lock it
    out for `lockout_s`; failures while it is locked out are refused and not counted."""

    max_failures: int
    window_s: int
    lockout_s: int

    def __post_init__(self) -> None:
        invariant(self.max_failures >= 1, "a lockout needs at least one failure")
        invariant(self.window_s >= 1 and self.lockout_s >= 1, "windows are positive")


@dataclass(frozen=True, slots=True)
class FailureCount:
    """What counting one failed authentication found."""

    already_locked: bool  # the subject was locked out: the failure was refused, not counted
    failures: int  # failures inside the window, this one included (0 when already locked)
    locked_until: datetime | None  # set when this failure is the one that locked it out

    @property
    def locked(self) -> bool:
        return self.already_locked or self.locked_until is not None


def lockout_subject(ip: str) -> str:
    """Whose failures count together: the IPv4 address (an IPv4-mapped IPv6 one included), the
    /64 of an IPv6 address, anything else ("unknown", a test client's name) as it is."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        prefix = ipaddress.IPv6Network((address.packed, _IPV6_CLIENT_PREFIX_LEN), strict=False)
        return str(prefix)
    return str(address)
