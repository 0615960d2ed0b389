"""NACHA ACH file of CCD credits (one batch, service class 220: credits only).

Layout (Nacha Operating Rules, Appendix Three): 94-character records, one per line, blocking
factor 10 (the file is padded with all-9 records to a multiple of 10 lines). Record types: 1 file
header, 5 batch header, 6 entry detail, 8 batch control, 9 file control. Entry hash = sum of the
8-digit receiving DFI ids, last 10 digits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from clearport.core.errors import InvalidRequest, invariant
from clearport.settlement.domain import PayoutLine

RECORD_LEN = 94
BLOCKING_FACTOR = 10
CHECKING_CREDIT = "22"
MAX_ENTRY_MINOR = 99_999_999_99  # 10-digit amount field


@dataclass(frozen=True, slots=True)
class NachaOriginator:
    odfi_routing: str  # 9 digits: the immediate destination and originating DFI
    company_id: str  # 10 characters
    company_name: str
    destination_name: str
    origin_name: str = ""


def aba_check_digit_valid(routing: str) -> bool:
    if len(routing) != 9 or not routing.isdigit():
        return False
    d = [int(c) for c in routing]
    return (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])) % 10 == 0


def _alpha(value: str, width: int) -> str:
    text = "".join(c if 32 <= ord(c) < 127 else " " for c in value.upper())
    return text[:width].ljust(width)


def _num(value: int, width: int) -> str:
    invariant(0 <= value < 10**width, "numeric field fits its width")
    return str(value).rjust(width, "0")


def _record(*fields: str) -> str:
    line = "".join(fields)
    invariant(len(line) == RECORD_LEN, f"NACHA record is {len(line)} characters, not 94")
    return line


def render_nacha(
    originator: NachaOriginator,
    lines: Sequence[PayoutLine],
    *,
    created_at: datetime,
    effective_date: date,
    file_id_modifier: str = "A",
    description: str = "PAYOUT",
) -> bytes:
    """One file, one CCD batch of credits. `created_at` comes from the run (deterministic)."""
    invariant(aba_check_digit_valid(originator.odfi_routing), "originator routing is valid")
    odfi8 = originator.odfi_routing[:8]
    records = [
        _record(
            "1",
            "01",
            " " + originator.odfi_routing,  # immediate destination
            _alpha(originator.company_id, 10),  # immediate origin
            created_at.strftime("%y%m%d"),
            created_at.strftime("%H%M"),
            _alpha(file_id_modifier, 1),
            "094",
            "10",
            "1",
            _alpha(originator.destination_name, 23),
            _alpha(originator.origin_name or originator.company_name, 23),
            _alpha("", 8),
        ),
        _record(
            "5",
            "220",
            _alpha(originator.company_name, 16),
            _alpha("", 20),
            _alpha(originator.company_id, 10),
            "CCD",
            _alpha(description, 10),
            effective_date.strftime("%y%m%d"),  # company descriptive date
            effective_date.strftime("%y%m%d"),  # effective entry date
            "   ",  # settlement date: filled in by the ACH operator
            "1",
            odfi8,
            _num(1, 7),
        ),
    ]
    entry_hash = 0
    total_credit = 0
    for seq, line in enumerate(lines, start=1):
        routing, account = line.routing_number, line.account_number
        if routing is None or account is None or not aba_check_digit_valid(routing):
            raise InvalidRequest(f"Payout {line.payout_id} has no valid US bank account.")
        if not (0 < line.amount_minor <= MAX_ENTRY_MINOR) or line.currency != "usd":
            raise InvalidRequest(f"Payout {line.payout_id} cannot be paid by ACH.")
        if not (1 <= len(account) <= 17 and account.isalnum()):
            raise InvalidRequest(f"Payout {line.payout_id} has an invalid account number.")
        entry_hash += int(routing[:8])
        total_credit += line.amount_minor
        records.append(
            _record(
                "6",
                CHECKING_CREDIT,
                routing[:8],
                routing[8],
                _alpha(account, 17),
                _num(line.amount_minor, 10),
                _alpha(line.payout_id[-15:], 15),  # identification number: the payout id
                _alpha(line.account_holder, 22),
                "  ",
                "0",
                odfi8 + _num(seq, 7),  # trace number
            )
        )
    count = len(lines)
    hash10 = entry_hash % 10**10
    records.append(
        _record(
            "8",
            "220",
            _num(count, 6),
            _num(hash10, 10),
            _num(0, 12),
            _num(total_credit, 12),
            _alpha(originator.company_id, 10),
            _alpha("", 19),
            _alpha("", 6),
            odfi8,
            _num(1, 7),
        )
    )
    total_records = len(records) + 1
    blocks = -(-total_records // BLOCKING_FACTOR)
    records.append(
        _record(
            "9",
            _num(1, 6),
            _num(blocks, 6),
            _num(count, 8),
            _num(hash10, 10),
            _num(0, 12),
            _num(total_credit, 12),
            _alpha("", 39),
        )
    )
    records.extend(["9" * RECORD_LEN] * (blocks * BLOCKING_FACTOR - total_records))
    return ("\n".join(records) + "\n").encode("ascii")
