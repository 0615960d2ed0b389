"""The authorization path's caches and rate limits across real processes (decision 0910, 0911).

Two `clearport serve` processes on one database with long cache TTLs (so only an announcement
can refresh them): a key revoked through one is refused by the other within a second, and so is
a suspended merchant's next payment; two processes with a small rate limit admit no more than
the limit plus the recorded error bound between them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support import TEST_SERVER_SECRET, Api, free_port

pytestmark = pytest.mark.slow

CLI = str(Path(sys.executable).parent / "clearport")
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


@contextmanager
def servers(api: Api, tmp_path: Path, count: int, **settings: str) -> Iterator[list[str]]:
    env = {
        **os.environ,
        "DATABASE_URL": api.database_url,
        "CLEARPORT_SECRET_KEY": TEST_SERVER_SECRET,
        "CLEARPORT_DATA_DIR": str(tmp_path / "data"),
        "CLEARPORT_LOG_LEVEL": "WARNING",
        "CLEARPORT_CONNECTORS_DEFAULT_ORDER": "simulator",
        # Trusted far longer than the test runs: only an announcement refreshes them.
        "CLEARPORT_AUTH_CACHE_TTL_S": "600",
        **settings,
    }
    ports = [free_port() for _ in range(count)]
    with ExitStack() as stack:
        for i, port in enumerate(ports):
            log = (tmp_path / f"serve-{i}.log").open("wb")
            stack.callback(log.close)
            proc = subprocess.Popen(
                [CLI, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
            )
            stack.callback(_stop, proc)
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for url in urls:
            _wait_ready(url)
        yield urls


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not become ready")


def _refused_within(check: httpx.Client, request: tuple[str, str, dict[str, object]]) -> float:
    """Seconds until `request` stops succeeding (polled every 20 ms, at most 10 s)."""
    method, url, kwargs = request
    started = time.monotonic()
    while time.monotonic() - started < 10:
        response = check.request(method, url, **kwargs)  # type: ignore[arg-type]
        if response.status_code >= 400:
            return time.monotonic() - started
        time.sleep(0.02)
    return float("inf")


def test_revoked_key_and_suspended_merchant_are_refused_by_another_process(
    api: Api, tmp_path: Path
) -> None:
    admin = api.operator()
    merchant_id, secret = api.merchant(admin)
    _, other_secret = api.merchant(admin)
    with servers(api, tmp_path, 2) as (first, second), httpx.Client(timeout=30) as http:
        auth = {"Authorization": f"Bearer {secret}"}
        # The second process has the key and the merchant's gate in its caches.
        for _ in range(3):
            paid = http.post(
                f"{second}/v1/payments",
                headers={**auth, "Idempotency-Key": f"warm-{time.monotonic_ns()}"},
                json={"amount": 100, "currency": "usd", "source": {"card": CARD}},
            )
            assert paid.status_code == 201, paid.text
        other = {"Authorization": f"Bearer {other_secret}"}
        assert http.get(f"{second}/v1/payments", headers=other).status_code == 200

        # Revoked through the first process: the second refuses the key within a second.
        keys = http.get(
            f"{first}/v1/merchants/{merchant_id}/keys",
            headers={"Authorization": f"Bearer {admin}"},
        ).json()["data"]
        key_id = next(k["id"] for k in keys)
        new_key = http.post(
            f"{first}/v1/merchants/{merchant_id}/keys",
            headers={"Authorization": f"Bearer {admin}"},
        ).json()["secret"]
        revoked = http.delete(
            f"{first}/v1/merchants/{merchant_id}/keys/{key_id}",
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert revoked.status_code == 200, revoked.text
        took_s = _refused_within(http, ("GET", f"{second}/v1/payments", {"headers": auth}))
        assert took_s < 1.0
        assert http.get(f"{second}/v1/payments", headers=auth).status_code == 401
        assert http.get(f"{second}/v1/payments", headers=other).status_code == 200

        # Suspended through the first process: the second refuses its next payment in a second.
        new_auth = {"Authorization": f"Bearer {new_key}"}

        def pay() -> dict[str, object]:
            return {
                "headers": {**new_auth, "Idempotency-Key": f"p-{time.monotonic_ns()}"},
                "json": {"amount": 100, "currency": "usd", "source": {"card": CARD}},
            }

        assert http.post(f"{second}/v1/payments", **pay()).status_code == 201  # type: ignore[arg-type]
        suspended = http.patch(
            f"{first}/v1/merchants/{merchant_id}",
            headers={"Authorization": f"Bearer {admin}"},
            json={"status": "suspended"},
        )
        assert suspended.status_code == 200, suspended.text
        started = time.monotonic()
        while time.monotonic() - started < 10:
            refused = http.post(f"{second}/v1/payments", **pay())  # type: ignore[arg-type]
            if refused.status_code != 201:
                break
            time.sleep(0.02)
        assert time.monotonic() - started < 1.0
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "merchant_inactive"


def test_rate_limit_holds_across_two_processes(api: Api, tmp_path: Path) -> None:
    """30 requests per window between two processes, 80 offered alternately: at least the
    limit is admitted (nothing under it is refused) and at most the limit plus the bound of
    decision 0911, (processes - 1) x what one process admits between two exchanges. Without the
    exchange each process would admit 30 on its own (60)."""
    limit, window_s, sync_s, pace_s = 30, 60, 0.05, 0.025
    admin = api.operator()
    _, secret = api.merchant(admin)
    # Whole within one window: start early in one.
    while time.time() % window_s > window_s - 15:
        time.sleep(0.5)
    with (
        servers(
            api,
            tmp_path,
            2,
            CLEARPORT_RATE_LIMIT_REQUESTS=str(limit),
            CLEARPORT_RATE_LIMIT_WINDOW_S=str(window_s),
            CLEARPORT_RATE_LIMIT_SYNC_S=str(sync_s),
        ) as urls,
        httpx.Client(timeout=30) as http,
    ):
        while time.time() % window_s > window_s - 15:
            time.sleep(0.5)
        auth = {"Authorization": f"Bearer {secret}"}
        statuses = []
        for i in range(80):
            statuses.append(http.get(f"{urls[i % 2]}/v1/payments", headers=auth).status_code)
            time.sleep(pace_s)
    admitted = statuses.count(200)
    assert set(statuses) <= {200, 429}
    # Each process answers every other request: between two exchanges (sync_s, plus the
    # exchange's own time on a busy machine, allowed 4x) it admits at most this many.
    per_interval = int(5 * sync_s / (2 * pace_s)) + 1
    assert limit <= admitted <= limit + per_interval
