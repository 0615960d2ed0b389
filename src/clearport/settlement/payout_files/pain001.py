"""ISO 20022 pain.001.001.03 SEPA credit transfers, built and schema-validated by `sepaxml`.

sepaxml stamps a random message id, random payment-information ids and the wall-clock creation
time; we overwrite all three with values derived from the payout file (its id and the run's
cutoff) before export, so re-running a date writes the same bytes. Validation runs on the final
document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sepaxml import SepaTransfer  # type: ignore[import-untyped]

from clearport.core.errors import InvalidRequest
from clearport.settlement.domain import PayoutLine

SCHEMA = "pain.001.001.03"


@dataclass(frozen=True, slots=True)
class SepaDebtor:
    name: str
    iban: str
    bic: str


class _DeterministicTransfer(SepaTransfer):  # type: ignore[misc]
    """sepaxml's SepaTransfer with caller-chosen message id, PmtInf ids and creation time."""

    def __init__(self, config: dict[str, Any], *, msg_id: str, created_at: datetime) -> None:
        self._fixed_msg_id = msg_id
        self._fixed_created = created_at.strftime("%Y-%m-%dT%H:%M:%S")
        super().__init__(config, schema=SCHEMA)

    def _create_header(self) -> None:
        self.msg_id = self._fixed_msg_id
        super()._create_header()
        header = self._xml.find(self.root_el).find("GrpHdr")
        header.find("CreDtTm").text = self._fixed_created

    def _finalize_batch(self) -> None:
        super()._finalize_batch()
        for n, node in enumerate(self._xml.iter("PmtInfId"), start=1):
            node.text = f"{self._fixed_msg_id[:30]}-{n:04d}"


def render_pain001(
    debtor: SepaDebtor,
    lines: Sequence[PayoutLine],
    *,
    file_id: str,
    created_at: datetime,
    execution_date: date,
) -> bytes:
    """One pain.001 document of EUR credit transfers, validated against the bundled XSD."""
    transfer = _DeterministicTransfer(
        {
            "name": debtor.name,
            "IBAN": debtor.iban,
            "BIC": debtor.bic,
            "batch": True,
            "currency": "EUR",
        },
        msg_id=file_id[:35],
        created_at=created_at,
    )
    for line in lines:
        if line.iban is None or line.currency != "eur" or line.amount_minor <= 0:
            raise InvalidRequest(f"Payout {line.payout_id} cannot be paid by SEPA transfer.")
        payment: dict[str, Any] = {
            "name": line.account_holder,
            "IBAN": line.iban,
            "amount": line.amount_minor,
            "execution_date": execution_date,
            "description": f"Clearport payout {line.payout_id}",
            "endtoend_id": line.payout_id[:35],
        }
        if line.bic:
            payment["BIC"] = line.bic
        transfer.add_payment(payment)
    out: bytes = transfer.export(validate=True)
    return out
