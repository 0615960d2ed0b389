"""Masking of anything that looks like a card number or a secret key, in any text.

Applied as the last step of the logging pipeline so that no code path, including exception
tracebacks from third-party code, can write a PAN or a key to a log.
"""

from __future__ import annotations

import re

from clearport.core.sensitive import luhn_valid

# 13-19 digits, optionally separated by single spaces or dashes, not glued to other digits.
_PAN_CANDIDATE = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
_SECRET = re.compile(r"\b(sk_(?:test|live)_|ok_|whsec_)[A-Za-z0-9]{4,}")
PAN_MASK = "[REDACTED_PAN]"


def _mask_pan(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = text.replace(" ", "").replace("-", "")
    return PAN_MASK if luhn_valid(digits) else text


def redact_secrets(text: str) -> str:
    """Mask secret keys only: for texts that legitimately hold long numbers (API responses,
    where a Luhn-valid network reference must survive) but must never keep a key."""
    return _SECRET.sub(lambda m: m.group(1) + "[REDACTED]", text)


def redact(text: str) -> str:
    if not text:
        return text
    return _PAN_CANDIDATE.sub(_mask_pan, redact_secrets(text))


def contains_card_number(text: str) -> bool:
    """Whether free text holds what looks like a card number (13-19 Luhn-valid digits): such
    text is refused where it would be stored and shown (dispute evidence, a reason)."""
    return any(
        luhn_valid(m.group(0).replace(" ", "").replace("-", ""))
        for m in _PAN_CANDIDATE.finditer(text)
    )
