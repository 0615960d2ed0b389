"""`make run`: it takes PORT=, checks the port before touching anything, and reuses the demo
merchant and keys it created before (kept in the data directory, 0600)."""

from __future__ import annotations

import socket
import stat
import subprocess
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.e2e.all_in_one import clearport_run, run_clearport, run_env
from tests.e2e.test_cli import empty_database  # noqa: F401 - the fixture
from tests.support import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _rows(url: str) -> list[object]:
    """Demo merchants, API keys, audit rows."""
    with psycopg.connect(url) as conn:
        return [
            conn.execute(query).fetchone()
            for query in (
                "SELECT count(*) FROM merchants WHERE name = 'Demo Coffee'",
                "SELECT count(*) FROM api_keys",
                "SELECT count(*) FROM audit_events",
            )
        ]


def test_make_run_passes_port() -> None:
    planned = subprocess.run(
        ["make", "-n", "run", "PORT=8001"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert ".venv/bin/clearport run --port 8001" in planned.stdout.splitlines()


def test_run_twice_shows_the_same_demo_keys_and_one_demo_merchant(
    empty_database: str,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    env = run_env(tmp_path / "data", empty_database)
    with clearport_run(free_port(), env, tmp_path) as first:
        keys = first.exports
        assert "(new;" in "\n".join(first.printed)
        answered = httpx.get(
            f"{first.url}/v1/merchants/{keys['MER']}",
            headers={"Authorization": f"Bearer {keys['OK']}"},
        )
        assert answered.status_code == 200 and answered.json()["name"] == "Demo Coffee"
        # The console's address and the operator key that signs in to it, and the console
        # answering there (its sign-in page).
        printed = "\n".join(first.printed)
        assert f"console        {first.url}/console" in printed
        assert f"operator key   {keys['OK']}" in printed
        assert "Sign in to the console" in httpx.get(f"{first.url}/console/login").text
    kept = tmp_path / "data" / "demo.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    before = _rows(empty_database)
    assert before[:2] == [(1,), (2,)]

    with clearport_run(free_port(), env, tmp_path) as second:
        assert second.exports == keys
        assert "(the same as before;" in "\n".join(second.printed)
        balance = httpx.get(
            f"{second.url}/v1/balance", headers={"Authorization": f"Bearer {keys['SK']}"}
        )
        assert balance.status_code == 200, balance.text
    assert _rows(empty_database) == before

    # A port in use: one line, exit 1, and not a row more.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        refused = run_clearport(port, env, tmp_path)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stdout == ""
    lines = refused.stderr.splitlines()
    assert len(lines) == 1 and "Address already in use" in lines[0]
    assert f"make run PORT={port + 1}" in lines[0]
    assert _rows(empty_database) == before


def test_a_busy_port_touches_nothing(
    empty_database: str,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        refused = run_clearport(busy.getsockname()[1], run_env(data_dir, empty_database), tmp_path)
    assert refused.returncode == 1 and "Address already in use" in refused.stderr
    assert not data_dir.exists()  # no server secret, no demo keys, no embedded database
    with psycopg.connect(empty_database) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    assert tables == (0,)  # not even migrated


def test_the_demo_pays_through_both_simulators(
    empty_database: str,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    env = run_env(tmp_path / "data", empty_database)
    with clearport_run(free_port(), env, tmp_path) as running:
        keys = running.exports
        merchant = {"Authorization": f"Bearer {keys['SK']}"}
        card = {"exp_month": 12, "exp_year": 2030}

        def pay(number: str) -> dict[str, object]:
            r = httpx.post(
                f"{running.url}/v1/payments",
                headers=merchant,
                json={
                    "amount": 1500,
                    "currency": "usd",
                    "source": {"card": {**card, "number": number}},
                },
            )
            assert r.status_code == 201, r.text
            return dict(r.json())

        paid = pay("4242424242424242")
        assert (paid["status"], paid["connector"]) == ("authorized", "demo-iso8583")
        failed = pay("4000000000000119")  # every processor answers 96: both are tried
        assert failed["status"] == "failed"
        assert failed["routing"] == {
            "rule_set": None,
            "version": None,
            "rule": "default",
            "candidates": ["demo-iso8583", "demo-http"],
            "chosen": "demo-http",
            "reason": "registered connectors, oldest first, in order",
            "failover": [{"connector": "demo-iso8583", "decline_code": "processing_error"}],
        }
        connectors = httpx.get(
            f"{running.url}/v1/connectors", headers={"Authorization": f"Bearer {keys['OK']}"}
        ).json()["data"]
        by_name = {c["name"]: c for c in connectors}
        assert set(by_name) == {"demo-iso8583", "demo-http"}
        assert str(by_name["demo-http"]["settings"]["api_key"]).startswith("****")
        printed = "\n".join(running.printed)
        assert (
            "demo-iso8583 (iso8583 simulator" in printed and "demo-http (http simulator" in printed
        )
    # The simulators kept their own records, in their own schemas.
    with psycopg.connect(empty_database) as conn:
        iso = conn.execute("SELECT count(*) FROM simulator_iso8583.transactions").fetchone()
        http = conn.execute("SELECT count(*) FROM simulator_http.transactions").fetchone()
    assert iso == (2,) and http == (1,)
