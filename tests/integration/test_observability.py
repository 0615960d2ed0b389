"""Health, readiness, metrics, rate limiting and log redaction."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from pathlib import Path

import structlog

from clearport.access.rate_limits import SharedRateLimiter
from clearport.access.store import PgRateShares
from clearport.core.redaction import redact
from clearport.db.database import Database
from clearport.logs import configure_logging
from tests.support import Api

PAN = "4111111111111111"
SECRET = "sk_live_AbCdEf0123456789AbCdEf01"


def test_health_ready_and_metrics(api: Api) -> None:
    assert api.call("GET", "/healthz").json() == {"status": "ok"}
    ready = api.call("GET", "/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    api.call("GET", "/v1/merchants", api.operator())
    metrics = api.call("GET", "/metrics").text
    assert (
        'clearport_http_requests_total{method="GET",route="/v1/merchants",status="200"}' in metrics
    )
    assert "clearport_http_request_duration_seconds_bucket" in metrics
    assert api.call("GET", "/healthz").headers["Request-Id"].startswith("req_")


def test_rate_limit_is_shared_across_processes(database_url: str) -> None:
    """Two limiters with separate pools (as two API processes have) share one budget once they
    have exchanged counts: each admits while its own count plus the other's stays under the
    limit."""

    async def scenario() -> list[int | None]:
        first, second = (
            Database(database_url, min_size=1, max_size=2),
            Database(database_url, min_size=1, max_size=2),
        )
        await first.open()
        await second.open()
        limiters = [
            SharedRateLimiter(PgRateShares(db), limit=4, window_s=3600, sync_s=1)
            for db in (first, second)
        ]
        try:
            results = []
            for i in range(6):
                results.append(await limiters[i % 2].hit("key_shared"))
                for _ in range(2):  # the first round writes, the second reads the other's
                    for limiter in limiters:
                        await limiter.sync()
            return results
        finally:
            for limiter in limiters:
                await limiter.close()
            await first.close()
            await second.close()

    results = asyncio.run(scenario())
    assert results[:4] == [None] * 4
    assert all(isinstance(r, int) and 1 <= r <= 3600 for r in results[4:])


def test_rate_limited_response_shape(api: Api) -> None:
    admin = api.operator()
    key_id_row = api.call("GET", "/v1/merchants", admin)
    assert key_id_row.status_code == 200
    from tests.support import pg

    # Another process (as the server learns at its next exchange) has spent every key's budget
    # for this window and the next few.
    with pg(api.database_url) as conn:
        conn.execute(
            "INSERT INTO rate_limit_shares (key_id, process, window_start, count) "
            "SELECT k.id, 'elsewhere-' || w, w, 1000000 FROM api_keys k, "
            "generate_series(floor(extract(epoch FROM now()))::bigint, "
            "floor(extract(epoch FROM now()))::bigint + 5) AS w"
        )
    deadline = time.monotonic() + 5
    limited = api.call("GET", "/v1/merchants", admin)
    while limited.status_code != 429 and time.monotonic() < deadline:
        time.sleep(0.05)
        limited = api.call("GET", "/v1/merchants", admin)
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert int(limited.headers["Retry-After"]) >= 1


def test_redact_masks_pans_and_secrets() -> None:
    text = (
        f"pan {PAN} spaced 4111 1111 1111 1111 dashed 4111-1111-1111-1111 "
        f"amex 378282246310005 key {SECRET} op ok_abcdefgh1234 hook whsec_abcdefgh"
    )
    out = redact(text)
    for leaked in (
        PAN,
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "378282246310005",
        SECRET,
        "ok_abcdefgh1234",
        "whsec_abcdefgh",
    ):
        assert leaked not in out
    # Non-Luhn digit runs (order numbers, timestamps) are left alone.
    assert redact("order 1234567890123 ts 1795485712000") == "order 1234567890123 ts 1795485712000"


def test_logging_pipeline_redacts_every_path(log_file: Path) -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream=stream)
    try:
        structlog.get_logger("t").info("structlog kwargs", card=PAN, key=SECRET)
        structlog.get_logger("t").info(f"structlog message {PAN} {SECRET}")
        logging.getLogger("some.library").warning("stdlib %s %s", PAN, SECRET)
        try:
            raise ValueError(f"bad card {PAN} with {SECRET}")
        except ValueError:
            logging.getLogger("x").exception("stdlib exception")
            structlog.get_logger("t").exception("structlog exception")
    finally:
        configure_logging("INFO", "json", stream=log_file.open("a", buffering=1))
    output = stream.getvalue()
    assert "[REDACTED_PAN]" in output and "Traceback" in output
    assert PAN not in output and SECRET not in output


def test_server_logs_never_contain_keys(api: Api, log_file: Path) -> None:
    admin = api.operator()
    merchant_id, secret = api.merchant(admin)
    api.call("GET", f"/v1/merchants/{merchant_id}", secret)
    api.call(
        "POST",
        "/v1/merchants",
        admin,
        json={"name": PAN, "country": "US", "mcc": "5411", "default_currency": "usd"},
    )
    api.call("GET", "/v1/merchants", f"{secret}x")
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = log_file.read_text()
    assert '"request_id"' in text
    assert admin not in text and secret not in text and PAN not in text
