"""NACHA return files: the entries a receiving bank sent back (Nacha Operating Rules, Appendix
Four), read without I/O.

A return is an entry detail record (type 6) whose transaction code returns a credit (21 checking,
26 savings), followed by its addenda record (type 7, addenda type 99): the return reason code
(R01 insufficient funds, R03 no account ...) and the original entry's trace number. The entry
keeps the original's identification number, which for our payouts is the payout id's last 15
characters (settlement/payout_files/nacha.py), and its amount.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clearport.core.errors import InvalidRequest

RECORD_LEN = 94
RETURN_OF_CREDIT_CODES = frozenset({"21", "26"})
MAX_FILE_BYTES = 10 * 1024 * 1024
_REASON = re.compile(r"^R[0-9]{2}$")


@dataclass(frozen=True, slots=True)
class ReturnEntry:
    identification: str  # as the original entry carried it (a payout id's last 15 characters)
    amount_minor: int
    reason_code: str  # R01 ...
    original_trace: str


def _records(data: bytes) -> list[str]:
    if len(data) > MAX_FILE_BYTES:
        raise InvalidRequest("The return file is larger than 10 MiB.", field="file")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidRequest("A NACHA file is ASCII text.", field="file") from None
    lines = [line.rstrip("\r") for line in text.split("\n")]
    records = [line for line in lines if line]
    for number, line in enumerate(records, start=1):
        if len(line) != RECORD_LEN:
            raise InvalidRequest(
                f"Line {number} of the return file is {len(line)} characters, not 94.",
                field="file",
            )
    if not records or records[0][0] != "1":
        raise InvalidRequest("A NACHA file starts with a file header (type 1).", field="file")
    return records


def parse_nacha_returns(data: bytes) -> list[ReturnEntry]:
    """The returned credits of a NACHA return file, in file order. Entries of other kinds
    (a notification of change, a returned debit) are not payouts of ours and are skipped."""
    records = _records(data)
    entries: list[ReturnEntry] = []
    for number, record in enumerate(records, start=1):
        if record[0] != "6" or record[1:3] not in RETURN_OF_CREDIT_CODES:
            continue
        addenda = records[number] if number < len(records) else ""
        if record[78] != "1" or addenda[:3] != "799":
            raise InvalidRequest(
                f"The returned entry on line {number} has no return addenda (type 7, 99).",
                field="file",
            )
        reason = addenda[3:6]
        amount = record[29:39]
        if not _REASON.match(reason) or not amount.isdigit():
            raise InvalidRequest(
                f"The returned entry on line {number} has no valid reason code or amount.",
                field="file",
            )
        entries.append(
            ReturnEntry(
                identification=record[39:54].strip(),
                amount_minor=int(amount),
                reason_code=reason,
                original_trace=addenda[6:21],
            )
        )
    return entries
