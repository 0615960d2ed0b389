"""The ISO 8583 path end to end against `clearport simulate iso8583` in its own process: every
operation, compared with the simulator's own records; a timed-out authorization reversed;
malformed answers (bad length, bad bitmap, no DE39); a host that accepts and never answers.
No card number in the logs of either side."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from clearport.access.domain import SYSTEM_CLI
from clearport.config import Settings
from clearport.core.pagination import PageRequest
from clearport.core.sensitive import SensitiveStr
from clearport.payments.domain import PaymentStatus
from clearport.payments.service import InlineCard, NewPayment
from clearport.vault.cards import CardInput
from clearport.wiring import Container
from tests.e2e.simulators import Simulator, register, simulator
from tests.payments_support import merchant_principal, with_container
from tests.sentinel import SentinelScan
from tests.support import Api, pg

pytestmark = pytest.mark.slow

APPROVE = "4242424242424242"
INSUFFICIENT = "4000000000009995"
PROCESSING_ERROR = "4000000000000119"


def payment(number: str = APPROVE, *, amount: int = 2599, capture: bool = False) -> NewPayment:
    card = CardInput(SensitiveStr(number), 12, 2030)
    return NewPayment(amount, "eur", InlineCard(card, SensitiveStr("123")), capture, None, {})


def attempts(api: Api, payment_id: str) -> list[tuple[str, str, str, str | None, str | None]]:
    with pg(api.database_url) as conn:
        return [
            (r[0], r[1], r[2], r[3], r[4])
            for r in conn.execute(
                "SELECT id, operation, status, decline_code, reverses FROM payment_attempts "
                "WHERE payment_id = %s ORDER BY created_at, id",
                (payment_id,),
            )
        ]


def assert_no_card_data(api: Api, log_file: Path, sim: Simulator, *pans: str) -> None:
    scan = SentinelScan()
    for pan in pans:
        scan.add_pan(pan)
        scan.add_cvc("123", pan)
    hits = scan.scan_texts({"simulator log": sim.log.read_text(errors="replace")})
    assert not hits, hits
    scan.assert_clean(api.database_url, log_file)  # the database (simulator schemas too), logs


def run(settings: Settings, api: Api, tmp_path: Path, work: object, **overrides: object) -> None:
    with_container(
        settings,
        api.database_url,
        tmp_path / "data",
        work,  # type: ignore[arg-type]
        connectors_default_order=None,
        **overrides,
    )


def test_every_operation_against_the_simulator_matches_its_records(
    api: Api, settings: Settings, tmp_path: Path, log_file: Path
) -> None:
    merchant_id, _ = api.merchant()
    principal = merchant_principal(merchant_id)
    with simulator("iso8583", api.database_url, tmp_path) as sim:

        async def work(c: Container) -> None:
            await register(c, "iso", sim, timeout_ms=5_000)
            authorized = await c.payments.create(principal, payment(), None)
            assert (authorized.status, authorized.connector) == (PaymentStatus.AUTHORIZED, "iso")
            assert authorized.auth_code and authorized.network_reference
            await c.payments.capture(principal, authorized.id, 2000, None)
            await c.payments.refund(principal, authorized.id, 500, None, None)
            sale = await c.payments.create(principal, payment(capture=True, amount=700), None)
            assert sale.status is PaymentStatus.CAPTURED
            voided = await c.payments.create(principal, payment(amount=300), None)
            assert (await c.payments.void(principal, voided.id, None)).status is (
                PaymentStatus.VOIDED
            )
            declined = await c.payments.create(principal, payment(INSUFFICIENT), None)
            assert (declined.status, declined.decline_code) == (
                PaymentStatus.DECLINED,
                "insufficient_funds",
            )
            failed = await c.payments.create(principal, payment(PROCESSING_ERROR), None)
            assert (failed.status, failed.decline_code) == (
                PaymentStatus.FAILED,
                "processing_error",
            )
            records = sim.records()
            auth = records[authorized.auth_attempt_id]
            assert (auth["kind"], auth["state"], auth["captured"], auth["refunded"]) == (
                "authorize",
                "captured",
                2000,
                500,
            )
            assert auth["network_ref"] == authorized.network_reference  # DE37
            assert (auth["card_bin"], auth["card_last4"]) == ("424242", "4242")
            assert records[sale.auth_attempt_id]["state"] == "captured"
            assert records[voided.auth_attempt_id]["state"] == "reversed"  # a void is a 0420
            assert records[declined.auth_attempt_id]["response_code"] == "51"
            assert records[failed.auth_attempt_id]["response_code"] == "96"
            # Every call Clearport made is on the processor's record, with the same answer.
            with pg(api.database_url) as conn:
                made = conn.execute(
                    "SELECT id, status, response_code FROM payment_attempts WHERE merchant_id = %s",
                    (merchant_id,),
                ).fetchall()
            assert len(made) == 8  # 4 authorizations and a sale, capture, refund, void
            for attempt_id, status, code in made:
                assert records[attempt_id]["response_code"] == code, attempt_id
                assert (status == "succeeded") == (code == "00")
            # Each message on the wire: a STAN and terminal of this process's pool, an RRN.
            wire = [r["details"] for r in records.values()]
            assert len({(d["terminal"], d["stan"]) for d in wire}) == len(records) == 8
            assert all(d["terminal"].startswith("CP") and len(d["rrn"]) == 12 for d in wire)

        run(settings, api, tmp_path, work)
        assert_no_card_data(api, log_file, sim, APPROVE, INSUFFICIENT, PROCESSING_ERROR)


def test_a_timed_out_authorization_is_reversed(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    merchant_id, _ = api.merchant()
    with simulator("iso8583", api.database_url, tmp_path, "--timeout-rate", "1") as sim:

        async def work(c: Container) -> None:
            await register(c, "iso", sim, timeout_ms=300)
            paid = await c.payments.create(merchant_principal(merchant_id), payment(), None)
            assert (paid.status, paid.decline_code) == (PaymentStatus.FAILED, "processing_error")
            [(auth_id, _, auth_status, code, _), (rev_id, op, rev_status, _, reverses)] = attempts(
                api, paid.id
            )
            assert (auth_status, code) == ("failed", "timeout")
            assert (op, rev_status, reverses) == ("reverse", "succeeded", auth_id)
            records = sim.records()
            # The processor approved it, never answered, and has reversed it.
            assert (records[auth_id]["state"], records[auth_id]["answered"]) == ("reversed", False)
            assert records[rev_id]["kind"] == "reverse"
            assert records[rev_id]["details"]["mti"] == "0420"
            assert records[rev_id]["details"]["rrn"] == records[auth_id]["details"]["rrn"]

        run(settings, api, tmp_path, work)


@pytest.mark.parametrize("malformed", ["bad_length", "bad_bitmap", "no_de39"])
def test_a_malformed_answer_fails_the_attempt_resets_the_connection_and_reverses(
    api: Api, settings: Settings, tmp_path: Path, log_file: Path, malformed: str
) -> None:
    merchant_id, _ = api.merchant()
    with simulator("iso8583", api.database_url, tmp_path, "--malformed", malformed) as sim:

        async def work(c: Container) -> None:
            await register(c, "iso", sim, timeout_ms=2_000)
            for _ in range(2):  # the second on a new connection: nothing crashed
                paid = await c.payments.create(merchant_principal(merchant_id), payment(), None)
                assert (paid.status, paid.decline_code) == (
                    PaymentStatus.FAILED,
                    "processing_error",
                )
                (auth_id, _, status, code, _), (_, op, reversed_, _, _) = attempts(api, paid.id)
                assert (status, code, op, reversed_) == (
                    "failed",
                    "processing_error",
                    "reverse",
                    "succeeded",
                )
                assert sim.records()[auth_id]["state"] == "reversed"

        run(settings, api, tmp_path, work)
        assert "iso8583_connection_reset" in log_file.read_text()
        assert_no_card_data(api, log_file, sim, APPROVE)


def test_a_host_that_never_answers_times_out_reverses_and_opens_the_breaker(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    merchant_id, _ = api.merchant()
    with simulator("iso8583", api.database_url, tmp_path, "--silent") as sim:

        async def work(c: Container) -> None:
            await register(c, "iso-silent", sim, timeout_ms=200)
            principal = merchant_principal(merchant_id)
            first = await c.payments.create(principal, payment(), None)
            assert first.status is PaymentStatus.FAILED
            (_, _, _, code, _), (rev_id, op, rev_status, _, _) = attempts(api, first.id)
            assert (code, op, rev_status) == ("timeout", "reverse", "pending")  # sent again later
            with pg(api.database_url) as conn:
                tries = conn.execute(
                    "SELECT tries, retry_at IS NOT NULL FROM payment_attempts WHERE id = %s",
                    (rev_id,),
                ).fetchone()
            assert tries == (1, True)
            # The authorization and its reversal both timed out: the breaker is open.
            view = await c.connectors.list(SYSTEM_CLI, PageRequest())
            assert [v.breaker for v in view.data] == ["open"]
            sample = REGISTRY.get_sample_value(
                "clearport_connector_breaker_state", {"connector": "iso-silent", "state": "open"}
            )
            assert sample == 1
            second = await c.payments.create(principal, payment(), None)
            assert second.status is PaymentStatus.FAILED
            [(_, _, status, code, _)] = attempts(api, second.id)
            assert (status, code) == ("failed", "breaker_open")  # refused without a call
            assert sim.records() == {}  # the host acted on nothing

        run(settings, api, tmp_path, work, breaker_failure_threshold=2)
