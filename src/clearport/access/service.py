"""Authenticating a bearer key, locking out an address that keeps failing, and applying the
key's rate limit."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import NoReturn

from clearport.access.domain import ApiKey, Origin, Principal, PrincipalKind, Role, hash_secret
from clearport.access.lockout import LockoutPolicy, lockout_subject
from clearport.access.ports import (
    ApiKeyRepository,
    AuthFailureCounter,
    AuthFailureLog,
    KeyLookup,
    RateLimiter,
)
from clearport.core.cache import BoundedTtlCache
from clearport.core.clock import Clock
from clearport.core.errors import AuthenticationFailed, RateLimited, invariant
from clearport.core.invalidation import CacheTopic, Invalidations
from clearport.core.uow import UnitOfWork

_KEY_PREFIXES = ("sk_test_", "sk_live_", "ok_")
MAX_API_KEY_LEN = 200
_NO_KEY = "No API key provided."
_INVALID_KEY = "Invalid API key provided."


@dataclass(frozen=True, slots=True)
class CachedKey:
    key: ApiKey
    secret_hash: bytes


@dataclass(frozen=True, slots=True)
class CachedLockout:
    """An address that was not locked out when read."""


NOT_LOCKED = CachedLockout()


class AuthCaches:
    """This process's copies of what authentication reads (decision 0910): keys by the keyed
    hash of their secret (tagged with the key's id, which a revocation announces) and the
    addresses that are not locked out (tagged with the subject, which a lockout announces).
    Unknown keys are never cached: every failure is counted in the database."""

    def __init__(self, *, max_entries: int, ttl_s: float) -> None:
        self.keys: BoundedTtlCache[bytes, CachedKey] = BoundedTtlCache(
            max_entries=max_entries, ttl_s=ttl_s
        )
        self.lockouts: BoundedTtlCache[str, CachedLockout] = BoundedTtlCache(
            max_entries=max_entries, ttl_s=ttl_s
        )


class Authenticator:
    """A failed authentication is counted against the caller's address (`lockout_subject`);
    once the policy locks it out, every key it presents, valid or not, is refused with the
    answer an unknown key gets, so a guess that hits cannot be told from one that misses
    (docs/decisions/0015)."""

    def __init__(
        self,
        uow: UnitOfWork,
        keys: ApiKeyRepository,
        failures: AuthFailureLog,
        failure_counter: AuthFailureCounter,
        rate_limiter: RateLimiter,
        clock: Clock,
        server_secret: bytes,
        lockout: LockoutPolicy,
        *,
        caches: AuthCaches | None = None,
        invalidations: Invalidations | None = None,
    ) -> None:
        self._caches = caches
        self._invalidations = invalidations
        self._uow = uow
        self._keys = keys
        self._failures = failures
        self._failure_counter = failure_counter
        self._rate_limiter = rate_limiter
        self._clock = clock
        self._server_secret = server_secret
        self._lockout = lockout

    async def authenticate(self, authorization: str | None, origin: Origin) -> Principal:
        subject = lockout_subject(origin.ip)
        secret = _bearer(authorization)
        if secret is None:
            await self._fail(origin, subject, "missing_key", _NO_KEY)
        if not secret.startswith(_KEY_PREFIXES) or len(secret) > MAX_API_KEY_LEN:
            await self._fail(origin, subject, "malformed_key", _INVALID_KEY)
        digest = hash_secret(self._server_secret, secret)
        found = await self._lookup(digest, subject)
        # The lookup is by an index on the HMAC; the final match is a constant-time comparison
        # of the stored and computed digests.
        if found.key is None or not hmac.compare_digest(found.secret_hash or b"", digest):
            await self._fail(origin, subject, "unknown_key", _INVALID_KEY)
        key = found.key
        if found.subject_locked:
            # The same steps as an unknown key from a locked-out address: the same answer.
            await self._fail(origin, subject, "address_locked", _INVALID_KEY, resource=key.id)
        if not key.usable_at(self._clock.now()):
            reason = "revoked_key" if key.revoked_at is not None else "expired_key"
            await self._fail(
                origin,
                subject,
                reason,
                "This API key has been revoked or has expired.",
                resource=key.id,
            )
        retry_after_s = await self._rate_limiter.hit(key.id)
        if retry_after_s is not None:
            raise RateLimited("Too many requests for this key.", retry_after_s=retry_after_s)
        if key.kind == "merchant":
            return Principal(PrincipalKind.MERCHANT, key.id, merchant_id=key.merchant_id)
        invariant(key.role is not None, "an operator key has a role")
        return Principal(PrincipalKind.OPERATOR, key.id, role=Role(str(key.role)))

    async def close(self) -> None:
        await self._rate_limiter.close()

    async def _lookup(self, digest: bytes, subject: str) -> KeyLookup:
        """The key and the subject's lockout: from this process's caches when both are there
        and the lockout (if any) still holds, else in one database round trip that refills
        them."""
        now = self._clock.now()
        caches = self._caches
        if caches is not None:
            key = caches.keys.get(digest)
            lockout = caches.lockouts.get(subject)
            # Only "not locked out" is trusted from the cache: a locked-out address is rare
            # and its every request is read afresh, so a lockout that ends (or a harness that
            # empties the table) is seen at once.
            if key is not None and lockout is not None:
                return KeyLookup(key.key, key.secret_hash, False, None)
            generation = (caches.keys.generation(), caches.lockouts.generation())
        async with self._uow.autocommit() as tx:
            found = await self._keys.find_by_hash(tx, digest, lockout_subject=subject, at=now)
        if caches is not None:
            if found.key is not None and found.secret_hash is not None:
                caches.keys.put(
                    digest,
                    CachedKey(found.key, found.secret_hash),
                    tag=found.key.id,
                    generation=generation[0],
                )
            if not found.subject_locked:
                caches.lockouts.put(subject, NOT_LOCKED, tag=subject, generation=generation[1])
        return found

    async def _fail(
        self, origin: Origin, subject: str, reason: str, message: str, resource: str = "api"
    ) -> NoReturn:
        # Counted and audited in one transaction: a failure is never counted unaudited.
        async with self._uow.transaction() as tx:
            count = await self._failure_counter.count_failure(
                tx, subject, self._clock.now(), self._lockout
            )
            await self._failures.auth_failed(
                tx, origin=origin, reason=reason, resource=resource, locked_out=count.locked
            )
            if count.locked_until is not None:
                if self._invalidations is not None:
                    # Every process stops trusting its cached "not locked out" for this subject.
                    await self._invalidations.publish(tx, CacheTopic.AUTH_LOCKOUT, subject)
                await self._failures.auth_locked_out(
                    tx,
                    origin=origin,
                    subject=subject,
                    failures=count.failures,
                    policy=self._lockout,
                    locked_until=count.locked_until,
                )
        if count.locked and message != _NO_KEY:
            # Locked out, the answer no longer depends on the key presented.
            message = _INVALID_KEY
        raise AuthenticationFailed(message)


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
