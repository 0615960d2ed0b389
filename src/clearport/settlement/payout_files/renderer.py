"""The `PayoutFileRenderer` of the settlement use case: picks the writer by format."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from clearport.core.errors import invariant
from clearport.settlement.domain import PayoutLine
from clearport.settlement.payout_files.csv_file import render_csv
from clearport.settlement.payout_files.nacha import NachaOriginator, render_nacha
from clearport.settlement.payout_files.pain001 import SepaDebtor, render_pain001


class PayoutFiles:
    def __init__(self, originator: NachaOriginator, debtor: SepaDebtor) -> None:
        self.originator = originator
        self.debtor = debtor

    def render(
        self,
        fmt: str,
        lines: Sequence[PayoutLine],
        *,
        file_id: str,
        created_at: datetime,
        execution_date: date,
    ) -> bytes:
        match fmt:
            case "nacha":
                return render_nacha(
                    self.originator, lines, created_at=created_at, effective_date=execution_date
                )
            case "pain001":
                return render_pain001(
                    self.debtor,
                    lines,
                    file_id=file_id,
                    created_at=created_at,
                    execution_date=execution_date,
                )
            case "csv":
                return render_csv(lines)
        invariant(False, f"unknown payout file format {fmt}")
        raise AssertionError  # unreachable
