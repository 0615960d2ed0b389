"""Authenticating a bearer key and applying its rate limit."""

from __future__ import annotations

import hmac
from typing import NoReturn

from clearport.access.domain import Origin, Principal, PrincipalKind, Role, hash_secret
from clearport.access.ports import ApiKeyRepository, AuthFailureLog, RateLimiter
from clearport.core.clock import Clock
from clearport.core.errors import AuthenticationFailed, RateLimited, invariant
from clearport.core.uow import UnitOfWork

_KEY_PREFIXES = ("sk_test_", "sk_live_", "ok_")
MAX_API_KEY_LEN = 200


class Authenticator:
    def __init__(
        self,
        uow: UnitOfWork,
        keys: ApiKeyRepository,
        failures: AuthFailureLog,
        rate_limiter: RateLimiter,
        clock: Clock,
        server_secret: bytes,
    ) -> None:
        self._uow = uow
        self._keys = keys
        self._failures = failures
        self._rate_limiter = rate_limiter
        self._clock = clock
        self._server_secret = server_secret

    async def authenticate(self, authorization: str | None, origin: Origin) -> Principal:
        secret = _bearer(authorization)
        if secret is None:
            await self._fail(origin, "missing_key", "No API key provided.")
        if not secret.startswith(_KEY_PREFIXES) or len(secret) > MAX_API_KEY_LEN:
            await self._fail(origin, "malformed_key", "Invalid API key provided.")
        digest = hash_secret(self._server_secret, secret)
        async with self._uow.autocommit() as tx:
            found = await self._keys.find_by_hash(tx, digest)
        # The lookup is by an index on the HMAC; the final match is a constant-time comparison
        # of the stored and computed digests.
        if found is None or not hmac.compare_digest(found[1], digest):
            await self._fail(origin, "unknown_key", "Invalid API key provided.")
        key = found[0]
        if not key.usable_at(self._clock.now()):
            reason = "revoked_key" if key.revoked_at is not None else "expired_key"
            await self._fail(
                origin, reason, "This API key has been revoked or has expired.", resource=key.id
            )
        retry_after_s = await self._rate_limiter.hit(key.id)
        if retry_after_s is not None:
            raise RateLimited("Too many requests for this key.", retry_after_s=retry_after_s)
        if key.kind == "merchant":
            return Principal(PrincipalKind.MERCHANT, key.id, merchant_id=key.merchant_id)
        invariant(key.role is not None, "an operator key has a role")
        return Principal(PrincipalKind.OPERATOR, key.id, role=Role(str(key.role)))

    async def _fail(
        self, origin: Origin, reason: str, message: str, resource: str = "api"
    ) -> NoReturn:
        async with self._uow.transaction() as tx:
            await self._failures.auth_failed(tx, origin=origin, reason=reason, resource=resource)
        raise AuthenticationFailed(message)


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
