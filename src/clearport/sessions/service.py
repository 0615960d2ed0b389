"""Signing operators in to the console: operator key, then TOTP (enrolled on the first sign-in,
the secret sealed by the vault), server-side sessions, a lockout per operator key.

The key is checked by the API's own `Authenticator` (unknown, revoked or expired keys, the
lockout per address, the rate limit, the audit of failures), so the console adds only what is
its own: the second factor, its lockout per key, and sessions (decisions 1000-1002).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import NoReturn

from clearport.access.domain import Origin, Principal, PrincipalKind
from clearport.access.lockout import LockoutPolicy
from clearport.access.ports import AuthFailureCounter
from clearport.access.service import Authenticator
from clearport.audit.domain import Outcome
from clearport.audit.service import Auditor
from clearport.core.clock import Clock
from clearport.core.errors import AuthenticationFailed
from clearport.core.uow import Transaction, UnitOfWork
from clearport.sessions import totp
from clearport.sessions.domain import (
    ConsoleSession,
    EnrolmentStatus,
    SessionPolicy,
    SessionStage,
    key_lockout_subject,
)
from clearport.sessions.ports import EnrolmentStore, SecretVault, SessionStore
from clearport.vault.domain import PLATFORM_OWNER

TOTP_PURPOSE = "totp"
# One answer for a wrong key, a wrong code and a locked key: a guess learns nothing.
REFUSED = "The operator key or the code is not valid, or the key is locked out."
_PURGE_PER_SIGN_IN = 10


@dataclass(frozen=True, slots=True)
class Enrolling:
    """The key was right and has no confirmed TOTP yet: show the secret once."""

    token: str  # the session cookie (stage `enrolling`)
    csrf_token: str  # the session's form token, for the confirmation form
    secret: str  # base32, shown once, never stored in the clear
    uri: str  # otpauth:// for the QR code


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: str  # the session cookie (stage `active`)


class SessionExpired(AuthenticationFailed):
    default_code = "session_expired"


class ConsoleSignIn:
    def __init__(
        self,
        uow: UnitOfWork,
        authenticator: Authenticator,
        enrolments: EnrolmentStore,
        sessions: SessionStore,
        failures: AuthFailureCounter,
        vault: SecretVault,
        auditor: Auditor,
        clock: Clock,
        server_secret: bytes,
        policy: SessionPolicy,
        lockout: LockoutPolicy,
    ) -> None:
        self._uow = uow
        self._authenticator = authenticator
        self._enrolments = enrolments
        self._sessions = sessions
        self._failures = failures
        self._vault = vault
        self._auditor = auditor
        self._clock = clock
        self._server_secret = server_secret
        self.policy = policy
        self.lockout = lockout

    async def sign_in(self, key_secret: str, code: str, origin: Origin) -> Enrolling | SignedIn:
        principal = await self._authenticator.authenticate(f"Bearer {key_secret}", origin)
        if principal.kind is not PrincipalKind.OPERATOR:
            await self._refuse(origin, principal, "not_an_operator_key", count=False)
        now = self._clock.now()
        async with self._uow.autocommit() as tx:
            locked = await self._sessions.key_locked(tx, key_lockout_subject(principal.key_id), now)
            enrolment = await self._enrolments.get(tx, principal.key_id)
        if locked:
            await self._refuse(origin, principal, "key_locked", count=False)
        if enrolment is None or enrolment.status is EnrolmentStatus.PENDING:
            return await self._start_enrolment(principal, origin)
        step = await self._matching_step(enrolment.secret_id, code)
        if step is None:
            await self._refuse(origin, principal, "totp_invalid")
        async with self._uow.transaction() as tx:
            token = None
            if await self._enrolments.accept_step(tx, principal.key_id, step, now):
                token, _ = await self._open(tx, principal, SessionStage.ACTIVE)
                await self._audit(tx, principal, origin, "console.signed_in")
        if token is None:
            await self._refuse(origin, principal, "totp_reused")
        return SignedIn(token)

    async def confirm_enrolment(self, token: str, code: str, origin: Origin) -> SignedIn:
        """The first code from the enrolled app confirms the secret and signs in (a new
        session token: the enrolling one ends)."""
        session = await self.resume(token)
        if session is None or session.stage is not SessionStage.ENROLLING:
            raise SessionExpired("The enrolment has expired; sign in again.")
        principal = session.principal
        now = self._clock.now()
        async with self._uow.autocommit() as tx:
            locked = await self._sessions.key_locked(tx, key_lockout_subject(session.key_id), now)
            enrolment = await self._enrolments.get(tx, session.key_id)
        if locked:
            await self._refuse(origin, principal, "key_locked", count=False)
        if enrolment is None or enrolment.status is not EnrolmentStatus.PENDING:
            raise SessionExpired("The enrolment has expired; sign in again.")
        step = await self._matching_step(enrolment.secret_id, code)
        if step is None:
            await self._refuse(origin, principal, "totp_invalid")
        async with self._uow.transaction() as tx:
            new_token = None
            if await self._enrolments.accept_step(tx, session.key_id, step, now):
                await self._sessions.delete(tx, self._hash(token))
                new_token, _ = await self._open(tx, principal, SessionStage.ACTIVE)
                await self._audit(tx, principal, origin, "console.totp_enrolled")
                await self._audit(tx, principal, origin, "console.signed_in")
        if new_token is None:
            await self._refuse(origin, principal, "totp_reused")
        return SignedIn(new_token)

    async def resume(self, token: str | None) -> ConsoleSession | None:
        """The live session of this cookie (its idle clock restarted), or None."""
        if not token or len(token) > 100:
            return None
        now = self._clock.now()
        async with self._uow.autocommit() as tx:
            return await self._sessions.touch(
                tx, self._hash(token), at=now, idle_since=self.policy.idle_since(now)
            )

    async def sign_out(self, token: str, origin: Origin) -> None:
        async with self._uow.transaction() as tx:
            key_id = await self._sessions.delete(tx, self._hash(token))
            if key_id is not None:
                await self._auditor.record(
                    tx,
                    actor=f"operator:{key_id}",
                    event_type="console.signed_out",
                    resource=f"operator_key:{key_id}",
                    origin=origin,
                )

    def form_token(self, binding: str) -> str:
        """A CSRF token bound to `binding` (the sign-in form's cookie), for forms shown
        before there is a session."""
        return hmac.new(
            self._server_secret, f"console-form:{binding}".encode(), hashlib.sha256
        ).hexdigest()

    # --- steps ------------------------------------------------------------------------------

    async def _start_enrolment(self, principal: Principal, origin: Origin) -> Enrolling:
        secret = totp.new_secret()
        async with self._uow.transaction() as tx:
            secret_id = await self._vault.seal_secret(
                tx, PLATFORM_OWNER, TOTP_PURPOSE, secret.encode()
            )
            replaced = await self._enrolments.put_pending(
                tx, principal.key_id, secret_id, self._clock.now()
            )
            if replaced is not None:
                await self._vault.destroy_secrets(tx, [replaced])
            token, csrf_token = await self._open(tx, principal, SessionStage.ENROLLING)
            await self._audit(tx, principal, origin, "console.totp_enrolment_started")
        return Enrolling(token, csrf_token, secret, totp.provisioning_uri(secret, principal.key_id))

    async def _matching_step(self, secret_id: str, code: str) -> int | None:
        async with self._uow.transaction() as tx:
            opened = await self._vault.open_secrets(tx, PLATFORM_OWNER, [secret_id])
        return totp.matching_step(opened[secret_id].decode(), code, self._clock.now())

    async def _open(
        self, tx: Transaction, principal: Principal, stage: SessionStage
    ) -> tuple[str, str]:
        """A new session: its cookie token and its CSRF token."""
        now = self._clock.now()
        await self._sessions.purge(tx, self.policy.idle_since(now), _PURGE_PER_SIGN_IN)
        token, csrf_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        await self._sessions.insert(
            tx,
            token_hash=self._hash(token),
            key_id=principal.key_id,
            stage=stage,
            csrf_token=csrf_token,
            at=now,
            expires_at=self.policy.expires_at(now),
        )
        return token, csrf_token

    async def _refuse(
        self, origin: Origin, principal: Principal, reason: str, *, count: bool = True
    ) -> NoReturn:
        """Count a failed code against the key, audit it (and the lockout it causes), refuse."""
        now = self._clock.now()
        subject = key_lockout_subject(principal.key_id)
        async with self._uow.transaction() as tx:
            locked_until = None
            if count:
                counted = await self._failures.count_failure(tx, subject, now, self.lockout)
                locked_until = counted.locked_until
            await self._audit(
                tx,
                principal,
                origin,
                "console.sign_in_failed",
                outcome=Outcome.FAILURE,
                details={"reason": reason},
            )
            if locked_until is not None:
                await self._audit(
                    tx,
                    principal,
                    origin,
                    "console.key_locked_out",
                    outcome=Outcome.FAILURE,
                    details={
                        "failures": self.lockout.max_failures,
                        "lockout_s": self.lockout.lockout_s,
                        "locked_until": locked_until.isoformat(),
                    },
                )
        raise AuthenticationFailed(REFUSED)

    async def _audit(
        self,
        tx: Transaction,
        principal: Principal,
        origin: Origin,
        event_type: str,
        *,
        outcome: Outcome = Outcome.SUCCESS,
        details: dict[str, object] | None = None,
    ) -> None:
        await self._auditor.record(
            tx,
            actor=principal.actor,
            event_type=event_type,
            resource=f"operator_key:{principal.key_id}",
            origin=origin,
            outcome=outcome,
            details=dict(details or {}),
        )

    def _hash(self, token: str) -> bytes:
        return hmac.new(
            self._server_secret, f"console-session:{token}".encode(), hashlib.sha256
        ).digest()
