"""The simulated processor's settlement file: what it settled on a day, in the layout of its
connector type (docs/reconciliation.md), written from its own records, never Clearport's.

A host started with `--settlement-file-dir DIR` writes `DIR/<name>-<YYYY-MM-DD>.csv` for the
current UTC day every few seconds (and the previous day's final file once the day turns), each
time to a temporary file renamed over the old one, so a reader never sees half a file. The
simulator settles on the day it captures: the settlement date is the capture's UTC date. It
charges `fee_bps` of the amount plus `fee_fixed_minor` (half up), split into interchange, a
scheme fee of 2 and its own 3 (documented defaults: 20 bps + 5).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import structlog

from clearport.connectors.processor_sim.records import Records

log = structlog.get_logger("clearport.simulator.settlement_file")

SCHEME_FEE_MINOR = 2
PROCESSOR_FEE_MINOR = 3


@dataclass(frozen=True, slots=True)
class SettlementFileOptions:
    directory: Path
    # The first column: `merchant_reference` (the HTTP acquirer: Clearport's attempt id) or
    # `retrieval_reference_number` (ISO 8583: the RRN it gave the authorization).
    reference_column: str
    fee_bps: int = 20
    fee_fixed_minor: int = 5
    interval_s: float = 5.0


HEADER_REST = (
    "type,amount_minor,currency,fee_minor,interchange_minor,scheme_fee_minor,"
    "processor_fee_minor,settlement_date,dispute_case_id"
)


def _fee(amount: int, options: SettlementFileOptions) -> int:
    return (amount * options.fee_bps + 5000) // 10000 + options.fee_fixed_minor


async def settlement_rows(
    records: Records, day: date, options: SettlementFileOptions
) -> list[list[str]]:
    """Captures (an authorization's captured amount, named by the authorization) and approved
    refunds (named by their own reference) the simulator booked on `day`."""
    by_rrn = options.reference_column == "retrieval_reference_number"
    start = datetime.combine(day, time(0), UTC)
    async with records.pool.acquire() as conn:
        rows = await conn.fetch(
            f"""
SELECT 'capture' AS type, CASE WHEN $3 THEN a.network_ref ELSE a.reference END AS reference,
       a.captured AS amount, a.currency
  FROM {records.schema}.transactions a
 WHERE a.kind IN ('authorize', 'sale') AND a.state = 'captured' AND a.captured > 0
   AND coalesce((SELECT max(c.created_at) FROM {records.schema}.transactions c
                  WHERE c.original = a.reference AND c.kind = 'capture'), a.created_at)
       >= $1
   AND coalesce((SELECT max(c.created_at) FROM {records.schema}.transactions c
                  WHERE c.original = a.reference AND c.kind = 'capture'), a.created_at)
       < $2
UNION ALL
SELECT 'refund', r.reference, r.amount, r.currency
  FROM {records.schema}.transactions r
 WHERE r.kind = 'refund' AND r.state = 'approved' AND r.created_at >= $1
   AND r.created_at < $2
 ORDER BY 2""",
            start,
            start + timedelta(days=1),
            by_rrn,
        )
    out = []
    for row in rows:
        if row["reference"] is None or row["amount"] is None or row["currency"] is None:
            continue
        amount = int(row["amount"])
        fee = _fee(amount, options) if row["type"] == "capture" else 0
        interchange = max(fee - SCHEME_FEE_MINOR - PROCESSOR_FEE_MINOR, 0)
        scheme = min(SCHEME_FEE_MINOR, fee - interchange)
        processor = fee - interchange - scheme
        out.append(
            [
                row["reference"],
                row["type"],
                str(amount),
                str(row["currency"]).upper(),
                str(fee),
                str(interchange),
                str(scheme),
                str(processor),
                day.isoformat(),
                "",
            ]
        )
    return out


async def write_settlement_file(
    records: Records, name: str, day: date, options: SettlementFileOptions
) -> Path:
    """Write the day's file (replacing it whole) and return its path."""
    rows = await settlement_rows(records, day, options)
    buffer = io.StringIO()
    buffer.write(f"{options.reference_column},{HEADER_REST}\n")
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    options.directory.mkdir(parents=True, exist_ok=True)
    path = options.directory / f"{name}-{day.isoformat()}.csv"
    partial = path.with_suffix(".csv.partial")
    partial.write_text(buffer.getvalue(), encoding="utf-8")
    os.replace(partial, path)
    return path


async def keep_writing(
    records: Records, name: str, options: SettlementFileOptions, stop: asyncio.Event
) -> None:
    """Rewrite today's file every `interval_s` until `stop`, then once more; when the UTC day
    turns, the previous day's file is written a last time first."""
    day = datetime.now(UTC).date()
    while True:
        today = datetime.now(UTC).date()
        try:
            if today != day:
                await write_settlement_file(records, name, day, options)
                day = today
            await write_settlement_file(records, name, day, options)
        except Exception as exc:  # the host keeps serving; the next pass tries again
            log.warning("settlement_file_failed", error=type(exc).__name__)
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), options.interval_s)
