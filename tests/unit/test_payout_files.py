"""Payout files and settlement reports, checked by independent readers."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from datetime import UTC, date, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
import sepaxml  # type: ignore[import-untyped]
import xmlschema  # type: ignore[import-untyped]

from clearport.core.errors import InvalidRequest
from clearport.settlement.domain import PayoutLine
from clearport.settlement.payout_files import (
    NachaOriginator,
    SepaDebtor,
    render_csv,
    render_nacha,
    render_pain001,
)

CREATED = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)


EXEC = date(2026, 11, 26)


ORIGINATOR = NachaOriginator("091000019", "1234567890", "CLEARPORT", "EXAMPLE BANK")


def usd_lines(n: int) -> list[PayoutLine]:
    routings = ["011000015", "021000021", "091000019", "122105278"]
    return [
        PayoutLine(
            payout_id=f"po_01JD{i:022d}",
            merchant_id=f"mer_{i}",
            amount_minor=1_000 * (i + 1) + i,
            currency="usd",
            account_holder=f"Merchant Number {i} Incorporated With A Long Name",
            execution_date=EXEC,
            routing_number=routings[i % len(routings)],
            account_number=f"{9_000_000 + i}",
        )
        for i in range(n)
    ]


# --- an independent NACHA reader, written from the record layouts ------------------------------

LAYOUTS = {
    "1": [("type", 1), ("priority", 2), ("dest", 10), ("origin", 10), ("date", 6), ("time", 4),
          ("modifier", 1), ("size", 3), ("blocking", 2), ("format", 1), ("dest_name", 23),
          ("origin_name", 23), ("ref", 8)],
    "5": [("type", 1), ("class", 3), ("company", 16), ("disc", 20), ("company_id", 10),
          ("sec", 3), ("desc", 10), ("desc_date", 6), ("effective", 6), ("settle", 3),
          ("status", 1), ("odfi", 8), ("batch", 7)],
    "6": [("type", 1), ("code", 2), ("rdfi", 8), ("check", 1), ("account", 17), ("amount", 10),
          ("ident", 15), ("name", 22), ("disc", 2), ("addenda", 1), ("trace", 15)],
    "8": [("type", 1), ("class", 3), ("count", 6), ("hash", 10), ("debit", 12), ("credit", 12),
          ("company_id", 10), ("mac", 19), ("reserved", 6), ("odfi", 8), ("batch", 7)],
    "9": [("type", 1), ("batches", 6), ("blocks", 6), ("count", 8), ("hash", 10), ("debit", 12),
          ("credit", 12), ("reserved", 39)],
}  # fmt: skip


def parse_nacha(data: bytes) -> list[dict[str, str]]:
    text = data.decode("ascii")
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines[:-1]) % 10 == 0, "blocking factor 10"
    out = []
    for line in lines[:-1]:
        assert len(line) == 94, line
        if line == "9" * 94:
            out.append({"type": "pad"})
            continue
        rec, pos = {}, 0
        for name, width in LAYOUTS[line[0]]:
            rec[name] = line[pos : pos + width]
            pos += width
        assert pos == 94
        out.append(rec)
    return out


def test_nacha_file_totals_and_layout() -> None:
    lines = usd_lines(13)
    data = render_nacha(ORIGINATOR, lines, created_at=CREATED, effective_date=EXEC)
    recs = parse_nacha(data)
    kinds = [r["type"] for r in recs]
    assert kinds[0] == "1" and kinds[1] == "5" and kinds[2:15] == ["6"] * 13
    assert kinds[15:17] == ["8", "9"] and set(kinds[17:]) == {"pad"} and len(recs) == 20
    header, batch, entries, bctl, fctl = recs[0], recs[1], recs[2:15], recs[15], recs[16]
    assert (header["size"], header["blocking"], header["date"]) == ("094", "10", "261124")
    assert (batch["class"], batch["sec"], batch["effective"]) == ("220", "CCD", "261126")
    total = sum(int(e["amount"]) for e in entries)
    assert total == sum(p.amount_minor for p in lines)
    entry_hash = sum(int(e["rdfi"]) for e in entries) % 10**10
    for e, p in zip(entries, lines, strict=True):
        assert e["code"] == "22"
        assert e["rdfi"] + e["check"] == p.routing_number
        assert e["account"].strip() == p.account_number
        assert int(e["amount"]) == p.amount_minor
        assert e["ident"].strip() == p.payout_id[-15:]
    assert [int(e["trace"][8:]) for e in entries] == list(range(1, 14))
    for ctl in (bctl, fctl):
        assert int(ctl["count"]) == 13 and int(ctl["hash"]) == entry_hash
        assert int(ctl["credit"]) == total and int(ctl["debit"]) == 0
    assert int(fctl["blocks"]) == 2 and int(fctl["batches"]) == 1
    # Deterministic: same inputs, same bytes.
    assert render_nacha(ORIGINATOR, lines, created_at=CREATED, effective_date=EXEC) == data


def test_nacha_refuses_bad_account() -> None:
    bad = usd_lines(1)[0]
    bad = dataclasses.replace(bad, routing_number="123")
    with pytest.raises(InvalidRequest):
        render_nacha(ORIGINATOR, [bad], created_at=CREATED, effective_date=EXEC)
    assert "9000000" not in repr(usd_lines(1)[0])  # bank numbers stay out of repr


def eur_lines(n: int) -> list[PayoutLine]:
    ibans = [("DE89370400440532013000", "COBADEFFXXX"), ("FR1420041010050500013M02606", None)]
    return [
        PayoutLine(
            payout_id=f"po_01JE{i:022d}",
            merchant_id=f"mer_{i}",
            amount_minor=12_345 + i,
            currency="eur",
            account_holder=f"Händler {i} GmbH",
            execution_date=EXEC,
            iban=ibans[i % 2][0],
            bic=ibans[i % 2][1],
        )
        for i in range(n)
    ]


def test_pain001_validates_against_the_iso20022_schema_and_is_deterministic() -> None:
    debtor = SepaDebtor("Clearport Payouts", "DE89370400440532013000", "COBADEFFXXX")
    lines = eur_lines(5)
    data = render_pain001(
        debtor, lines, file_id="pf_2026-11-23_eur", created_at=CREATED, execution_date=EXEC
    )
    xsd = Path(os.path.dirname(sepaxml.__file__)) / "schemas" / "pain.001.001.03.xsd"
    xmlschema.XMLSchema(str(xsd)).validate(data.decode())
    ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
    root = ElementTree.fromstring(data)
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:MsgId", namespaces=ns) == (
        "pf_2026-11-23_eur"
    )
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs", namespaces=ns) == "5"
    ctrl = root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=ns)
    assert ctrl == f"{sum(p.amount_minor for p in lines) / 100:.2f}"
    e2e = [e.text for e in root.iter("{urn:iso:std:iso:20022:tech:xsd:pain.001.001.03}EndToEndId")]
    assert e2e == [p.payout_id for p in lines]
    again = render_pain001(
        debtor, lines, file_id="pf_2026-11-23_eur", created_at=CREATED, execution_date=EXEC
    )
    assert again == data


def test_csv_payout_file() -> None:
    line = PayoutLine(
        "po_1", "mer_1", 123_456, "jpy", "Tokyo KK", EXEC, iban="X", bic="Y"
    )  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(render_csv([line]).decode())))
    assert rows[0]["amount"] == "123456" and rows[0]["amount_minor"] == "123456"
    line2 = PayoutLine("po_2", "mer_2", 1_005, "gbp", "Ltd", EXEC)
    (row2,) = csv.DictReader(io.StringIO(render_csv([line2]).decode()))
    assert row2["amount"] == "10.05"
