"""Uploaded files: what may be uploaded for what purpose, recognised by content (never by the
name or the label the client sends), and the record kept of each. No I/O."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from clearport.core.errors import InvalidRequest

MAX_FILE_BYTES = 5 * 1024 * 1024  # API.md: at most 5 MB


class FilePurpose(StrEnum):
    DISPUTE_EVIDENCE = "dispute_evidence"
    RECONCILIATION = "reconciliation"


class FileType(StrEnum):
    PDF = "pdf"
    PNG = "png"
    JPEG = "jpeg"
    CSV = "csv"


# Evidence is a document or a picture; a processor's settlement file is CSV.
ALLOWED_TYPES: dict[FilePurpose, frozenset[FileType]] = {
    FilePurpose.DISPUTE_EVIDENCE: frozenset({FileType.PDF, FileType.PNG, FileType.JPEG}),
    FilePurpose.RECONCILIATION: frozenset({FileType.CSV}),
}

_MAGIC = (
    (b"%PDF-", FileType.PDF),
    (b"\x89PNG\r\n\x1a\n", FileType.PNG),
    (b"\xff\xd8\xff", FileType.JPEG),
)
# Text a CSV file may hold besides printable characters: tab and line ends.
_CSV_CONTROLS = frozenset(chr(c) for c in range(32)) - {"\t", "\r", "\n"}


def _is_csv(data: bytes) -> bool:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    if not text.strip() or any(c in _CSV_CONTROLS or c == "\x7f" for c in text):
        return False
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        return False
    return bool(rows)


def file_type_of(data: bytes) -> FileType | None:
    """The type of `data` by its content: a PDF, PNG or JPEG by its signature, CSV as UTF-8
    text that parses as CSV; None for anything else."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return FileType.CSV if _is_csv(data) else None


def check_upload(purpose: FilePurpose, data: bytes) -> FileType:
    """The type of an upload for `purpose`, or a 400 naming `file`: empty, over the limit, or
    of a type the purpose does not take."""
    if not data:
        raise InvalidRequest("'{field}' is empty.", field="file")
    if len(data) > MAX_FILE_BYTES:
        raise InvalidRequest(
            f"'{{field}}' exceeds {MAX_FILE_BYTES} bytes.", code="file_too_large", field="file"
        )
    kind = file_type_of(data)
    allowed = ALLOWED_TYPES[purpose]
    if kind not in allowed:
        names = ", ".join(sorted(str(t).upper() for t in allowed))
        raise InvalidRequest(
            f"'{{field}}' must be {names} for purpose '{purpose}'.",
            code="file_type_refused",
            field="file",
        )
    return kind


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str  # file_...
    merchant_id: str | None  # None: an operator's file
    purpose: FilePurpose
    type: FileType
    size: int
    sha256: str
    object_key: str
    created_by: str
    created_at: datetime

    def usable_by(self, merchant_id: str) -> bool:
        """A merchant's own file, or an operator's (filed on a merchant's behalf)."""
        return self.merchant_id in (None, merchant_id)
