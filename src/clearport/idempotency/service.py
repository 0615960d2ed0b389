"""One idempotency mechanism for every POST, whatever the endpoint.

The first completed response per (principal, Idempotency-Key) is stored with a keyed hash of the
request's parameters (its canonical JSON, so whitespace and key order do not matter: see
`domain.canonical_body`); a retry gets it back, a different request under the same key gets 422,
a retry while the first is still running gets 409. Responses that say "your request was
invalid" (400), "send JSON" (415), "slow down" (429) or "we failed" (5xx) are not stored, so
the client can fix and retry under the same key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clearport.core.errors import (
    IdempotencyInProgress,
    IdempotencyMismatch,
    InvalidRequest,
    present,
)
from clearport.core.uow import Transaction
from clearport.idempotency.domain import RequestHash, hash_request
from clearport.idempotency.ports import IdempotencyStore

MAX_IDEMPOTENCY_KEY_LEN = 255
# Printable ASCII, not starting or ending with a space (HTTP strips those from a header value, so
# " " would arrive empty). The OpenAPI document declares the same pattern.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]([ -~]*[!-~])?$"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def is_storable(status: int) -> bool:
    # A 415 is a request the client fixes (its Content-Type) and retries under the same key.
    return status not in {400, 415, 429} and status < 500


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    body: bytes


@dataclass(slots=True)
class IdempotencyClaim:
    """A claimed key; the handler may complete it inside its own transaction.

    `recovered_resource` is the object an earlier, abandoned attempt of the same request created
    (bound with `bind_resource`): the handler must answer with it instead of creating another.
    `keep_open` leaves the key in progress (the recovered object is not final yet).
    """

    scope: str
    key: str
    recovered_resource: str | None = None
    completed_in_transaction: bool = False
    keep_open: bool = False
    # Deferred (decision 0912): nothing is claimed yet; the endpoint claims the key in its first
    # transaction (`claim_in`), so the claim costs no commit of its own. `request_hash` is what
    # it stores; `claimed` whether that transaction claimed it, `bound_resource` what it was to
    # create (None for a capture or void, which create nothing a retry could recover).
    deferred: bool = False
    request_hash: RequestHash | None = None
    claimed: bool = False
    bound_resource: str | None = None

    def rolled_back(self) -> None:
        """The transaction that claimed a deferred key rolled back: nothing is claimed."""
        if self.deferred:
            self.claimed = False
            self.bound_resource = None


class ClaimContended(Exception):
    """A deferred claim found the key taken: the route claims it the ordinary way (replay,
    409, 422, or a recovery) and runs the endpoint again if that claims it."""


class IdempotencyService:
    def __init__(
        self, store: IdempotencyStore, server_secret: bytes, *, ttl_s: int, lock_timeout_s: int
    ) -> None:
        self._store = store
        self._server_secret = server_secret
        self._ttl_s = ttl_s
        self._lock_timeout_s = lock_timeout_s

    def request_hash(self, method: str, path: str, body: bytes) -> RequestHash:
        return hash_request(self._server_secret, method, path, body)

    def check_key(self, key: str) -> None:
        if len(key) > MAX_IDEMPOTENCY_KEY_LEN or not _IDEMPOTENCY_KEY.match(key):
            raise InvalidRequest(
                f"'Idempotency-Key' must be 1-{MAX_IDEMPOTENCY_KEY_LEN} printable ASCII "
                "characters.",
                field="Idempotency-Key",
            )

    def deferred(self, scope: str, key: str, request_hash: RequestHash) -> IdempotencyClaim:
        """A claim the endpoint makes in its own first transaction (`claim_in`)."""
        self.check_key(key)
        return IdempotencyClaim(scope, key, deferred=True, request_hash=request_hash)

    async def claim_in(
        self, tx: Transaction, claim: IdempotencyClaim, resource_id: str | None
    ) -> None:
        """First in the endpoint's first transaction, which creates `resource_id` (None: the
        request creates nothing a retry could recover, e.g. a capture): a deferred claim is
        made here (or `ClaimContended` raised); an ordinary one records what it creates
        (`bind_resource`). The caller calls `claim.rolled_back()` if the transaction fails."""
        if not claim.deferred:
            if resource_id is not None:
                await self.bind_resource(tx, claim, resource_id)
            return
        request_hash = present(claim.request_hash, "a deferred claim has its request's hash")
        if not await self._store.claim_new(
            tx, claim.scope, claim.key, request_hash.current, resource_id
        ):
            raise ClaimContended(claim.key)
        claim.claimed = True
        claim.bound_resource = resource_id

    async def begin(
        self, scope: str, key: str, request_hash: RequestHash
    ) -> IdempotencyClaim | Replay:
        self.check_key(key)
        outcome, status, body, stored_hash, resource_id = await self._store.claim(
            scope, key, request_hash, self._lock_timeout_s, self._ttl_s
        )
        if outcome == "claimed":
            return IdempotencyClaim(scope, key, recovered_resource=resource_id)
        if not request_hash.matches(stored_hash):
            raise IdempotencyMismatch(
                "This Idempotency-Key was already used with a different request."
            )
        if outcome == "in_progress":
            raise IdempotencyInProgress(
                "A request with this Idempotency-Key is still being processed; retry later."
            )
        return Replay(
            present(status, "a completed key has its status"),
            present(body, "a completed key has its body"),
        )

    async def bind_resource(
        self, tx: Transaction, claim: IdempotencyClaim, resource_id: str
    ) -> None:
        """Record, in the transaction that creates it, which object this request created."""
        await self._store.bind_resource(tx, claim.scope, claim.key, resource_id)

    async def complete_in(
        self, tx: Transaction, claim: IdempotencyClaim, status: int, body: bytes
    ) -> None:
        """Store the response in the caller's transaction, atomically with its writes."""
        await self._store.complete(claim.scope, claim.key, status, body, tx=tx)
        claim.completed_in_transaction = True

    async def finish(self, claim: IdempotencyClaim, status: int, body: bytes) -> None:
        if claim.completed_in_transaction or claim.keep_open:
            return
        if claim.deferred:
            # Claimed and bound in a committed transaction, it stays for a retry to recover
            # unless the answer is stored; claimed with nothing to recover (a capture), it is
            # released as an ordinary claim is; never claimed (refused before), the answer is
            # stored under the key if nobody took it meanwhile.
            if claim.claimed:
                if is_storable(status):
                    await self._store.complete(claim.scope, claim.key, status, body)
                elif claim.bound_resource is None:
                    await self._store.release(claim.scope, claim.key)
            elif is_storable(status):
                request_hash = present(claim.request_hash, "a deferred claim has its hash")
                await self._store.store_new(
                    claim.scope, claim.key, request_hash.current, status, body
                )
            return
        if is_storable(status):
            await self._store.complete(claim.scope, claim.key, status, body)
        else:
            await self._store.release(claim.scope, claim.key)

    async def abandon(self, claim: IdempotencyClaim) -> None:
        # A deferred claim bound to what it creates stays for the retry to recover; one that
        # binds nothing is released as an ordinary claim is (`release` keeps a bound key).
        if claim.completed_in_transaction or claim.keep_open:
            return
        if not claim.deferred or (claim.claimed and claim.bound_resource is None):
            await self._store.release(claim.scope, claim.key)
