"""Replay of history: a seeded window of payments through candidate routing and risk rules;
the report twice, identical; the same through `clearport routing simulate`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from clearport.bins.service import SAMPLE_FILE
from clearport.wiring import Container
from tests.integration.test_cache_invalidation import DELIVERY_BOUND_S
from tests.support import TEST_SERVER_SECRET, Api

CARD = {"exp_month": 12, "exp_year": 2030, "cvc": "123"}
# (number, amount): credit and debit cards, a decline, a BIN the risk rules of the time block.
HISTORY = [
    ("4242424242424242", 1_000),
    ("4242424242424242", 25_000),
    ("4000056655665556", 1_500),
    ("4000056655665556", 2_000),
    ("5555555555554444", 70_000),
    ("4000000000000002", 3_000),  # declined: do_not_honor
    ("5105105105105100", 999),
    ("378282246310005", 12_345),
]
BLOCKED_THEN = "378282246310005"


def _cvc(number: str) -> str:
    return "1234" if number.startswith(("34", "37")) else "123"


def _seed(api: Api, admin: str) -> tuple[str, int, int]:
    r = api.call(
        "POST",
        "/v1/connectors",
        admin,
        json={
            "name": "acquirer-b",
            "type": "http_acquirer",
            "settings": {"url": "http://127.0.0.1:9"},
        },
    )
    assert r.status_code == 201, r.text
    risk = api.call(
        "POST",
        "/v1/risk_rule_sets",
        admin,
        json={
            "rules": [
                {
                    "name": "no-amex",
                    "mode": "enforce",
                    "kind": "block_list",
                    "field": "bin",
                    "values": ["378282"],
                }
            ]
        },
    ).json()
    api.call("POST", f"/v1/risk_rule_sets/{risk['id']}/activate", admin)
    _, key = api.merchant(
        admin, pricing={"model": "blended", "percent_bps": 290, "fixed_minor": {"usd": 30}}
    )
    since = int(time.time()) - 1
    for number, amount in HISTORY:
        r = api.call(
            "POST",
            "/v1/payments",
            key,
            json={
                "amount": amount,
                "currency": "usd",
                "source": {"card": {**CARD, "number": number, "cvc": _cvc(number)}},
            },
        )
        assert r.status_code == 201, r.text
    return key, since, int(time.time()) + 1


CANDIDATE_ROUTING = {
    "rules": [
        {"name": "debit", "when": {"funding": "debit"}, "then": {"connectors": ["acquirer-b"]}},
    ],
    "default": {"connectors": ["simulator"]},
}
CANDIDATE_RISK = {
    "rules": [
        {
            "name": "big",
            "mode": "enforce",
            "kind": "amount_limit",
            "currency": "usd",
            "max_amount": 50_000,
        },
    ]
}


def _funding(api: Api, key: str) -> str | None:
    card = {"number": "4000056655665556", "exp_month": 12, "exp_year": 2030}
    token = api.call("POST", "/v1/tokens", key, json={"card": card}).json()
    return token["card"]["funding"]  # type: ignore[no-any-return]


def _without_id(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "id"}


async def test_a_week_replayed_twice_gives_the_same_report(
    api: Api, vault_container: Container, tmp_path: Path
) -> None:
    await vault_container.bins.import_text(SAMPLE_FILE.read_text())
    admin = api.operator("admin")
    _, key = api.merchant(admin)
    deadline = time.monotonic() + DELIVERY_BOUND_S
    while _funding(api, key) is None:  # until the server has heard of the import
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    _, since, until = _seed(api, admin)
    body = {
        "routing_rule_set": CANDIDATE_ROUTING,
        "risk_rule_set": CANDIDATE_RISK,
        "since": since,
        "until": until,
    }
    finance = api.operator("finance")
    first = api.call("POST", "/v1/routing_simulations", finance, json=body)
    assert first.status_code == 200, first.text
    report = first.json()
    second = api.call("POST", "/v1/routing_simulations", admin, json=body).json()
    assert _without_id(second) == _without_id(report)
    assert report["object"] == "routing_simulation" and report["id"].startswith("rsim_")

    assert report["payments"] == len(HISTORY)
    # The 70 000 payment is newly blocked; the Amex blocked then is released.
    assert report["newly_blocked"]["count"] == 1 and report["released"]["count"] == 1
    assert report["blocked"] == 1
    by_connector = {c["connector"]: c for c in report["connectors"]}
    assert set(by_connector) == {"acquirer-b", "simulator"}
    assert by_connector["acquirer-b"]["count"] == 2  # the two debit payments
    assert by_connector["acquirer-b"]["volume"] == [{"currency": "usd", "amount": 3_500}]
    # acquirer-b was never tried in the window: it is projected at the window's overall rate,
    # 6 approvals of 7 attempts (the simulator's, with one decline).
    assert by_connector["acquirer-b"]["projected_approval_rate_bps"] == round(6 / 7 * 10_000)
    simulator = by_connector["simulator"]
    assert simulator["count"] == len(HISTORY) - 2 - 1
    # Too few attempts per BIN or brand to go by: the simulator's own rate over the window.
    assert simulator["projected_approval_rate_bps"] == round(6 / 7 * 10_000)
    assert simulator["projected_fees"][0]["amount"] > 0
    assert report["rerouted"] == 2 + 1  # the debits, and the released Amex

    # No candidates: the history as it was (nothing blocked anew, nothing rerouted).
    plain = api.call(
        "POST", "/v1/routing_simulations", admin, json={"since": since, "until": until}
    ).json()
    assert (plain["rerouted"], plain["newly_blocked"]["count"], plain["blocked"]) == (0, 0, 1)

    # Errors name the candidate's field.
    bad = dict(body, routing_rule_set={**CANDIDATE_ROUTING, "default": {"connectors": ["nope"]}})
    refused = api.call("POST", "/v1/routing_simulations", admin, json=bad).json()["error"]
    assert refused["param"] == "routing_rule_set[default][connectors]"
    support = api.operator("support")
    assert api.call("POST", "/v1/routing_simulations", support, json=body).status_code == 403

    # The command line gives the same report.
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(json.dumps(CANDIDATE_ROUTING))
    risk_file = tmp_path / "risk.json"
    risk_file.write_text(json.dumps(CANDIDATE_RISK))
    env = {
        **os.environ,
        "DATABASE_URL": api.database_url,
        "CLEARPORT_SECRET_KEY": TEST_SERVER_SECRET,
        "CLEARPORT_DATA_DIR": str(tmp_path / "data"),
    }
    out = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "clearport.cli",
            "routing",
            "simulate",
            "--rules",
            str(rules_file),
            "--risk",
            str(risk_file),
            "--since",
            str(since),
            "--until",
            str(until),
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert _without_id(json.loads(out.stdout)) == _without_id(report)
