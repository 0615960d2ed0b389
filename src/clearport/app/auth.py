"""Authenticating a bearer key and applying its rate limit."""

from __future__ import annotations

import hmac

from clearport.app.audit import Auditor, Origin
from clearport.app.ports import ApiKeyRepository, Clock, RateLimiter, UnitOfWork
from clearport.domain.audit import Outcome
from clearport.domain.errors import AuthenticationFailed, RateLimited
from clearport.domain.principals import Principal, PrincipalKind, hash_secret
from clearport.domain.roles import Role

_KEY_PREFIXES = ("sk_test_", "sk_live_", "ok_")
_MAX_KEY_LEN = 200


class Authenticator:
    def __init__(
        self,
        uow: UnitOfWork,
        keys: ApiKeyRepository,
        auditor: Auditor,
        rate_limiter: RateLimiter,
        clock: Clock,
        server_secret: bytes,
    ) -> None:
        self._uow = uow
        self._keys = keys
        self._auditor = auditor
        self._rate_limiter = rate_limiter
        self._clock = clock
        self._server_secret = server_secret

    async def authenticate(self, authorization: str | None, origin: Origin) -> Principal:
        secret = _bearer(authorization)
        if secret is None:
            await self._fail(origin, "missing_key", "No API key provided.")
        assert secret is not None
        if not secret.startswith(_KEY_PREFIXES) or len(secret) > _MAX_KEY_LEN:
            await self._fail(origin, "malformed_key", "Invalid API key provided.")
        digest = hash_secret(self._server_secret, secret)
        async with self._uow.autocommit() as tx:
            found = await self._keys.find_by_hash(tx, digest)
        # The lookup is by an index on the HMAC; the final match is a constant-time comparison
        # of the stored and computed digests.
        if found is None or not hmac.compare_digest(found[1], digest):
            await self._fail(origin, "unknown_key", "Invalid API key provided.")
        assert found is not None
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
        assert key.role is not None
        return Principal(PrincipalKind.OPERATOR, key.id, role=Role(key.role))

    async def _fail(self, origin: Origin, reason: str, message: str, resource: str = "api") -> None:
        async with self._uow.transaction() as tx:
            await self._auditor.record(
                tx,
                actor="anonymous",
                event_type="auth.failed",
                resource=resource,
                origin=origin,
                outcome=Outcome.FAILURE,
                details={"reason": reason},
            )
        raise AuthenticationFailed(message)


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
