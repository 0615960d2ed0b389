"""Sentinel scan: a card number and CVC sent to /v1/payments must not be found anywhere we keep
data — payments, attempts, refunds, events, the txlog and its seals, stored idempotent responses,
the audit log, the application log or the checkpoint files."""

from __future__ import annotations

import uuid
from pathlib import Path

from psycopg import sql

from clearport.config import Settings
from clearport.wiring import Container
from tests.payments_support import with_container
from tests.sentinel import SentinelScan
from tests.support import Api, pg

PAN = "378282246310005"  # amex test number: 4-digit CVC
CVC = "8147"


def _dump(database_url: str) -> str:
    parts: list[str] = []
    with pg(database_url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        ]
        for table in tables:
            for row in conn.execute(
                sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(table))
            ).fetchall():
                parts.append(str(row[0]))
            for row in (
                conn.execute(
                    sql.SQL("SELECT convert_from(response_body, 'UTF8') FROM idempotency_keys")
                ).fetchall()
                if table == "idempotency_keys"
                else []
            ):
                parts.append(str(row[0]))
    return "\n".join(parts)


def _leaks(text: str) -> list[str]:
    found = []
    if PAN in text or PAN[6:] in text:
        found.append("pan")
    for pattern in (f'"{CVC}"', f"'{CVC}'", f"={CVC}", f": {CVC}", '"cvc"'):
        if pattern in text:
            found.append(pattern)
    return found


def test_no_pan_or_cvc_anywhere(
    api: Api, settings: Settings, database_url: str, log_file: Path, tmp_path: Path
) -> None:
    _, key = api.merchant()
    card = {"number": PAN, "exp_month": 12, "exp_year": 2030, "cvc": CVC}
    created = api.call(
        "POST",
        "/v1/payments",
        key,
        json={"amount": 5000, "currency": "usd", "source": {"card": card}},
        idempotency_key=str(uuid.uuid4()),
    )
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    for path, body in [
        (f"/v1/payments/{pid}/capture", None),
        (f"/v1/payments/{pid}/refunds", {"amount": 100}),
    ]:
        r = api.call("POST", path, key, json=body, idempotency_key=str(uuid.uuid4()))
        assert r.status_code in (200, 201), r.text
    bad = api.call(  # a rejected request carrying the card must not leak it either
        "POST",
        "/v1/payments",
        key,
        json={"amount": -1, "currency": "usd", "source": {"card": card}},
        idempotency_key=str(uuid.uuid4()),
    )
    assert bad.status_code == 400
    assert _leaks(bad.text) == []
    token = api.call(
        "POST", "/v1/tokens", key, json={"card": {k: v for k, v in card.items() if k != "cvc"}}
    ).json()["id"]
    via_token = api.call(
        "POST",
        "/v1/payments",
        key,
        json={"amount": 10, "currency": "usd", "source": {"token": token, "cvc": CVC}},
        idempotency_key=str(uuid.uuid4()),
    )
    assert via_token.status_code == 201, via_token.text

    async def seal(c: Container) -> None:
        for chain in ("txlog", "audit"):
            await c.chains.seal(chain, 1000, checkpoint_now=True)
            await c.chains.copy_checkpoints(chain, "test", 1000)

    with_container(settings, database_url, tmp_path, seal)
    dump = _dump(database_url)
    assert "payment.captured" in dump  # the scan does see the payment tables
    assert _leaks(dump) == []
    for api_path in ("/v1/events?limit=100", f"/v1/payments/{pid}", "/v1/refunds"):
        assert _leaks(api.call("GET", api_path, key).text) == []
    assert _leaks(log_file.read_text()) == []
    # The vault's scanner over a full pg_dump (payments, attempts, refunds, events, txlog and its
    # seals, idempotent responses, audit), the log and the event tables.
    scan = SentinelScan()
    scan.add_pan(PAN)
    scan.add_cvc(CVC, PAN)
    sources = scan.assert_clean(database_url, log_file)
    for table in ("COPY public.payments", "COPY public.txlog", "COPY public.events"):
        assert table in sources["pg_dump"]
    assert pid in sources["table events"]
    copies = list((tmp_path / "objects" / "txlog" / "checkpoints").rglob("*.json"))
    assert copies  # the checkpoints in object storage are scanned too
    for checkpoint in copies:
        assert _leaks(checkpoint.read_text()) == []
