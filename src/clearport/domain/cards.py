"""Card-number arithmetic shared by the vault and the log redactor."""

from __future__ import annotations


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
