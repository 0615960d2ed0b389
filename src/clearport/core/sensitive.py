"""Values that must never be printed: `SensitiveStr` (card numbers, CVCs, account numbers)
and the Luhn check the redactor and the vault share."""

from __future__ import annotations

import hmac
from typing import Any, NoReturn


def luhn_valid(digits: str) -> bool:
    """True when `digits` (ASCII digits only) passes the Luhn mod-10 check."""
    if not digits.isdigit() or not digits.isascii():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


class SensitiveStr:
    """A secret string (PAN, CVC, account number) that masks itself everywhere but `.reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("SensitiveStr wraps a str")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The plaintext. Call only where the value must leave memory (encryption, connector)."""
        return str(object.__getattribute__(self, "_value"))

    def masked(self) -> str:
        value = self.reveal()
        return "****" + value[-4:] if len(value) >= 8 else "****"

    def __repr__(self) -> str:
        return f"SensitiveStr('{self.masked()}')"

    def __str__(self) -> str:
        return "[REDACTED]"

    def __format__(self, spec: str) -> str:
        return "[REDACTED]"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SensitiveStr):
            return NotImplemented
        return hmac.compare_digest(self.reveal().encode(), other.reveal().encode())

    def __hash__(self) -> int:
        return hash(("SensitiveStr", self.reveal()))

    def __len__(self) -> int:
        return len(self.reveal())

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("SensitiveStr is immutable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("SensitiveStr cannot be pickled or serialized")

    def __copy__(self) -> SensitiveStr:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SensitiveStr:
        return self
