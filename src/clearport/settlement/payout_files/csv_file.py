"""CSV payout instructions for currencies without a scheme file format here."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal

from clearport.core.money import exponent
from clearport.settlement.domain import PayoutLine

COLUMNS = (
    "payout_id",
    "merchant_id",
    "currency",
    "amount_minor",
    "amount",
    "execution_date",
    "account_holder",
    "iban",
    "bic",
    "routing_number",
    "account_number",
)


def render_csv(lines: Sequence[PayoutLine]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for line in lines:
        writer.writerow(
            (
                line.payout_id,
                line.merchant_id,
                line.currency,
                line.amount_minor,
                str(Decimal(line.amount_minor).scaleb(-exponent(line.currency))),
                line.execution_date.isoformat(),
                line.account_holder,
                line.iban or "",
                line.bic or "",
                line.routing_number or "",
                line.account_number or "",
            )
        )
    return buf.getvalue().encode("utf-8")
