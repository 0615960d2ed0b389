"""TOTP (RFC 6238) through pyotp: 30-second steps, 6 digits, SHA-1 (what authenticator apps
read from a QR code), one step of clock drift either way."""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

STEP_S = 30
DIGITS = 6
_DRIFT_STEPS = 1
ISSUER = "Clearport"


def new_secret() -> str:
    """160 random bits in base32, RFC 4226's recommended length."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, account: str) -> str:
    """The `otpauth://` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(
        name=account, issuer_name=ISSUER
    )


def step_at(at: datetime) -> int:
    return int(at.timestamp()) // STEP_S


def matching_step(secret: str, code: str, at: datetime) -> int | None:
    """The time step whose code is `code` (now or one step either side), else None."""
    code = code.strip()
    # isdigit() alone admits other scripts' digits ("١٢٣٤٥٦"), which compare_digest refuses.
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S)
    now = step_at(at)
    for step in range(now - _DRIFT_STEPS, now + _DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.at(step * STEP_S).encode(), code.encode()):
            return step
    return None
