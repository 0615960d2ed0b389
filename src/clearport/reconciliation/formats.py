"""The settlement file of each connector type: one CSV layout, documented in docs/reconciliation.md.

Every layout has the same ten columns in the same order; what differs is how a transaction is
named. Files from the simulator and the HTTP acquirer name it by the attempt id Clearport sent
(the processor's "merchant reference"); ISO 8583 files by the retrieval reference number the
network assigned (the payment's network reference). A refund is named by its own attempt id in
every layout (refund messages carry Clearport's reference back), and a dispute by its network
case id, with `reference` naming the disputed transaction. The header line says which layout a
file is in, so a file for the wrong connector type is refused at line 1. Pure: no I/O.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from clearport.core.errors import InvalidRequest

MAX_BIGINT = 2**63 - 1
MAX_FIELD_LEN = 64


class ReferenceKind(StrEnum):
    ATTEMPT_ID = "attempt_id"  # Clearport's authorization attempt id (att_…)
    NETWORK_REFERENCE = "network_reference"  # the RRN the network gave the authorization


@dataclass(frozen=True, slots=True)
class FileFormat:
    connector_type: str
    reference_column: str
    reference_kind: ReferenceKind

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.reference_column, *COMMON_COLUMNS)

    @property
    def header(self) -> str:
        return ",".join(self.columns)


# After the reference: the staging table's columns, in the file's order.
COMMON_COLUMNS = (
    "type",
    "amount_minor",
    "currency",
    "fee_minor",
    "interchange_minor",
    "scheme_fee_minor",
    "processor_fee_minor",
    "settlement_date",
    "dispute_case_id",
)
INTEGER_COLUMNS = frozenset(
    {"amount_minor", "fee_minor", "interchange_minor", "scheme_fee_minor", "processor_fee_minor"}
)
LINE_TYPES = ("capture", "refund", "dispute")

FORMATS: dict[str, FileFormat] = {
    "simulator": FileFormat("simulator", "merchant_reference", ReferenceKind.ATTEMPT_ID),
    "http_acquirer": FileFormat("http_acquirer", "merchant_reference", ReferenceKind.ATTEMPT_ID),
    "iso8583": FileFormat("iso8583", "retrieval_reference_number", ReferenceKind.NETWORK_REFERENCE),
}


class FileRefused(InvalidRequest):
    """The file as a whole is not in the connector's layout: nothing of it is applied."""

    def __init__(self, line_number: int, reason: str) -> None:
        super().__init__(f"Line {line_number}: {reason}", code="file_format_invalid", field="file")
        self.line_number = line_number
        self.reason = reason


def format_for(connector_type: str) -> FileFormat:
    found = FORMATS.get(connector_type)
    if found is None:
        raise InvalidRequest(
            f"Connectors of type '{connector_type}' have no settlement file layout.",
            code="connector_type_unsupported",
            field="connector",
        )
    return found


def check_header(fmt: FileFormat, first_line: str) -> None:
    """Line 1 names the layout: another connector type's header, or none, refuses the file."""
    header = first_line.strip().lstrip("\ufeff")
    if header != fmt.header:
        for other in FORMATS.values():
            if other.header == header and other.reference_kind != fmt.reference_kind:
                raise FileRefused(
                    1, f"this is a {other.connector_type} settlement file, not {fmt.connector_type}"
                )
        raise FileRefused(1, f"the header must be '{fmt.header}'")


@dataclass(frozen=True, slots=True)
class RejectedLine:
    line_number: int
    reason: str


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def line_problem(fields: list[str]) -> str | None:
    """What keeps a row's values from being loaded as their types (what COPY itself would
    refuse); the rules between fields are checked in SQL, for every file alike."""
    if len(fields) != len(COMMON_COLUMNS) + 1:
        return f"expected {len(COMMON_COLUMNS) + 1} fields, found {len(fields)}"
    for name, value in zip(COMMON_COLUMNS, fields[1:], strict=True):
        if name in INTEGER_COLUMNS:
            if not value.isascii() or not value.lstrip("-").isdigit():
                return f"{name} must be an integer"
            if abs(int(value)) > MAX_BIGINT:
                return f"{name} is out of range"
        elif name == "settlement_date":
            if not _DATE.match(value):
                return "settlement_date must be YYYY-MM-DD"
            try:
                date.fromisoformat(value)
            except ValueError:
                return "settlement_date is not a calendar date"
    return None


def split_loadable(
    lines: Iterable[str], *, first_line_number: int = 2
) -> Iterator[tuple[int, list[str] | RejectedLine]]:
    """The rows after the header, each either its fields (loadable) or why it is not. A row
    that spans lines (a quoted newline) is refused with the whole file: layouts have none."""
    for offset, raw in enumerate(lines):
        number = first_line_number + offset
        text = raw.rstrip("\r\n")
        if not text:
            yield number, RejectedLine(number, "empty line")
            continue
        try:
            fields = next(csv.reader(io.StringIO(text), strict=True))
        except (csv.Error, StopIteration) as exc:
            yield number, RejectedLine(number, f"not a CSV row ({exc})")
            continue
        problem = line_problem(fields)
        yield number, (RejectedLine(number, problem) if problem else fields)
