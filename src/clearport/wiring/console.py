"""The operator console's sign-in service over its PostgreSQL stores."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clearport.access.service import Authenticator
    from clearport.audit.service import Auditor
    from clearport.config import Settings
    from clearport.core.clock import Clock
    from clearport.core.uow import UnitOfWork
    from clearport.sessions.service import ConsoleSignIn
    from clearport.vault.service import VaultService


def console_sign_in_for(
    settings: Settings,
    uow: UnitOfWork,
    authenticator: Authenticator,
    vault: VaultService,
    auditor: Auditor,
    clock: Clock,
    server_secret: bytes,
) -> ConsoleSignIn:
    from clearport.access.lockout import LockoutPolicy
    from clearport.access.store import PgAuthFailureCounter
    from clearport.sessions.domain import SessionPolicy
    from clearport.sessions.service import ConsoleSignIn
    from clearport.sessions.store import PgEnrolmentStore, PgSessionStore

    return ConsoleSignIn(
        uow,
        authenticator,
        PgEnrolmentStore(),
        PgSessionStore(),
        PgAuthFailureCounter(),
        vault,
        auditor,
        clock,
        server_secret,
        SessionPolicy(idle_s=settings.console_idle_s, lifetime_s=settings.console_lifetime_s),
        # PCI DSS 8.3.4 per operator key: 10 failed codes within the window lock the key out.
        LockoutPolicy(
            max_failures=settings.console_max_failures,
            window_s=settings.console_lockout_s,
            lockout_s=settings.console_lockout_s,
        ),
    )
