"""A date's run keeps its cutoff (another one is 409), and a settlement's items page newest
first by (created time, id) with cursors that must name an item of it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clearport.config import Settings
from clearport.core.ids import new_id
from tests.integration.test_payments_api import pay, post
from tests.integration.test_settlement_api import wait_run
from tests.support import Api, pg


def _settled(api: Api, settings: Settings) -> tuple[str, str, str, dict[str, Any]]:
    """(finance key, merchant key, settlement id, the run) after settling yesterday with
    captures, a refund and then one more capture: id order (pay_… < rfd_…) is not time order."""
    admin = api.operator("admin")
    _merchant, key = api.merchant(admin, payout_delay_days=0)
    first = pay(api, key, amount=1_000, capture=True)
    pay(api, key, amount=1_100, capture=True)
    refund = post(api, key, f"/v1/payments/{first['id']}/refunds", {"amount": 300})
    assert refund.status_code == 201, refund.text
    pay(api, key, amount=1_200, capture=True)  # newer than the refund
    time.sleep(1.1)  # the cutoff (whole seconds) must be after them
    finance = api.operator("finance")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    body = {"business_date": yesterday, "cutoff": int(time.time())}
    started = api.call("POST", "/v1/settlement_runs", finance, json=body)
    assert started.status_code == 201, started.text
    run = wait_run(api, finance, started.json()["id"], settings)
    assert run["status"] == "completed", run
    (settlement,) = api.call("GET", "/v1/settlements", key).json()["data"]
    return finance, key, settlement["id"], run


def test_a_new_cutoff_for_a_date_with_a_run_is_409(api: Api, settings: Settings) -> None:
    finance, _key, _settlement, run = _settled(api, settings)
    same = {"business_date": run["business_date"], "cutoff": run["cutoff"]}
    for body in (same, {"business_date": run["business_date"]}):
        joined = api.call("POST", "/v1/settlement_runs", finance, json=body)
        assert joined.status_code == 200, joined.text
        assert joined.json()["id"] == run["id"] and joined.json()["cutoff"] == run["cutoff"]
    for cutoff in (run["cutoff"] - 1, run["cutoff"] + 1):
        moved = api.call("POST", "/v1/settlement_runs", finance, json={**same, "cutoff": cutoff})
        assert moved.status_code == 409, moved.text
        error = moved.json()["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            "invalid_state",
            "cutoff",
        )
    with pg(api.database_url) as conn:
        runs = conn.execute("SELECT id, cutoff_at FROM settlement_runs").fetchall()
    assert [(r, int(c.timestamp())) for r, c in runs] == [(run["id"], run["cutoff"])]


def _expected_order(api: Api, settlement_id: str) -> list[str]:
    with pg(api.database_url) as conn:
        rows = conn.execute(
            "SELECT source_id FROM settlement_items WHERE settlement_id = %s "
            "ORDER BY created_at DESC, source_id DESC",
            (settlement_id,),
        ).fetchall()
    return [r[0] for r in rows]


def _walk(api: Api, key: str, path: str, *, backwards: bool) -> list[str]:
    """Every item, two at a time, by `starting_after` from the first page or by
    `ending_before` from the last one; in list order either way."""
    pages: list[list[str]] = []
    params: dict[str, Any] = {"limit": 2}
    if backwards:
        everything = api.call("GET", path, key, params={"limit": 100}).json()["data"]
        params["ending_before"] = everything[-1]["id"]
        pages.append([everything[-1]["id"]])
    while True:
        r = api.call("GET", path, key, params=params)
        assert r.status_code == 200, r.text
        ids = [i["id"] for i in r.json()["data"]]
        if backwards:
            pages.insert(0, ids)
        else:
            pages.append(ids)
        if not r.json()["has_more"]:
            break
        cursor = "ending_before" if backwards else "starting_after"
        params[cursor] = ids[0] if backwards else ids[-1]
    return [i for page in pages for i in page]


def test_items_are_newest_first_and_both_cursors_walk_them(api: Api, settings: Settings) -> None:
    _finance, key, settlement_id, _run = _settled(api, settings)
    path = f"/v1/settlements/{settlement_id}/items"
    expected = _expected_order(api, settlement_id)
    assert len(expected) == 4
    assert expected != sorted(expected, reverse=True)  # the refund is not the newest
    listed = api.call("GET", path, key, params={"limit": 100}).json()["data"]
    assert [i["id"] for i in listed] == expected
    assert expected[0].startswith("pay_") and expected[1].startswith("rfd_")

    # Items created at the same instant page by id: six more lines at one created_at.
    with pg(api.database_url) as conn:
        oldest = conn.execute(
            "SELECT min(created_at) FROM settlement_items WHERE settlement_id = %s",
            (settlement_id,),
        ).fetchone()
        assert oldest is not None
        at = oldest[0]
        for _ in range(6):
            source = new_id("pay")
            conn.execute(
                "INSERT INTO settlement_items (source_id, settlement_id, transfer_id,"
                " merchant_id, payment_id, type, currency, gross, interchange, scheme_fee,"
                " markup, commission, net, created_at, business_date)"
                " SELECT %s, settlement_id, transfer_id, merchant_id, %s, 'capture', currency,"
                " 100, 0, 0, 1, 1, 99, %s, business_date FROM settlement_items"
                " WHERE settlement_id = %s"
                " LIMIT 1",
                (source, source, at, settlement_id),
            )
    expected = _expected_order(api, settlement_id)
    assert len(expected) == 10
    assert _walk(api, key, path, backwards=False) == expected
    assert _walk(api, key, path, backwards=True) == expected


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("starting_after", "zzz"),
        ("ending_before", "zzz"),
        ("starting_after", "stl_01JD3ZZZZZZZZZZZZZZZZZZZZZ"),
        ("starting_after", new_id("pay")),  # well formed, but no item of this settlement
        ("ending_before", new_id("rfd")),
    ],
)
def test_an_items_cursor_must_name_an_item_of_the_settlement(
    api: Api, settings: Settings, param: str, value: str
) -> None:
    _finance, key, settlement_id, _run = _settled(api, settings)
    r = api.call("GET", f"/v1/settlements/{settlement_id}/items", key, params={param: value})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert r.json()["error"]["code"] == "parameter_invalid"
