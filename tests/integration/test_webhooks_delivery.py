"""Delivery end to end against a local receiver: signatures that an independent verifier (and
Stripe's library) accept, rotation's two signatures, retries until a 2xx, order by sequence,
events that commit late, disabled endpoints, hostile receivers, the SSRF guard at delivery and
TLS to the pinned address."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from datetime import timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import psycopg
import stripe
import trustme

from clearport.access.domain import Origin
from clearport.config import Settings
from clearport.webhooks.domain import EndpointStatus, signature_header
from clearport.webhooks.endpoints import EndpointPatch
from clearport.webhooks.fake import FakeResolver
from clearport.wiring import Container
from tests.integration.test_payments_api import pay, post
from tests.payments_support import ShiftedClock
from tests.support import Api, pg
from tests.webhook_support import (
    ADMIN,
    deliver_all,
    merchant,
    receiving,
    signatures,
    verify,
    webhook_container,
)

ORIGIN = Origin("127.0.0.1")


async def _endpoint(
    c: Container, merchant_id: str | None, url: str, events: list[str] | None = None
) -> tuple[str, str]:
    actor = ADMIN if merchant_id is None else merchant(merchant_id)
    issued = await c.webhooks.create_endpoint(
        actor, ORIGIN, url=url, enabled_events=events or ["*"]
    )
    return issued.endpoint.id, issued.secret


def _attempts(c_api: Api, endpoint_id: str) -> list[tuple[Any, ...]]:
    with pg(c_api.database_url) as conn:
        return conn.execute(
            "SELECT attempt, status_code, error, next_retry_at FROM webhook_delivery_attempts"
            " WHERE endpoint_id = %s ORDER BY id",
            (endpoint_id,),
        ).fetchall()


async def test_signed_delivery_round_trip(api: Api, settings: Settings, database_url: str) -> None:
    merchant_id, key = api.merchant()
    with receiving() as receiver:
        async with webhook_container(settings, database_url) as c:
            endpoint_id, secret = await _endpoint(c, merchant_id, receiver.url)
            payment = pay(api, key)
            post(api, key, f"/v1/payments/{payment['id']}/capture")
            assert await deliver_all(c) == 2
    assert len(receiver.received) == 2
    for got in receiver.received:
        header = got.headers["clearport-signature"]
        assert verify(got.body, header, secret, now=time.time())
        assert stripe.WebhookSignature.verify_header(got.body.decode(), header, secret, 300)
        body = json.loads(got.body)
        assert got.headers["clearport-event-id"] == body["id"]
        assert got.headers["content-type"] == "application/json"
        # The body is the event as the API shows it.
        assert api.call("GET", f"/v1/events/{body['id']}", key).json() == body
    # Both, each once. Their arrival order is not asserted: an endpoint takes several
    # requests in flight (CLEARPORT_WEBHOOKS_ENDPOINT_CONCURRENCY), so the two race; the order
    # they are sent in is the ordering test's subject.
    assert sorted(json.loads(r.body)["type"] for r in receiver.received) == [
        "payment.authorized",
        "payment.captured",
    ]
    listed = api.call("GET", f"/v1/webhook_endpoints/{endpoint_id}/deliveries", key).json()
    assert [(d["attempt"], d["status_code"], d["error"]) for d in listed["data"]] == [
        (1, 200, None),
        (1, 200, None),
    ]


async def test_rotation_sends_both_signatures_during_the_overlap(
    api: Api, settings: Settings, database_url: str
) -> None:
    merchant_id, key = api.merchant()
    actor = merchant(merchant_id)
    with receiving() as receiver:
        async with webhook_container(settings, database_url) as c:
            endpoint_id, first = await _endpoint(c, merchant_id, receiver.url)
            second = (await c.webhooks.rotate_secret(actor, ORIGIN, endpoint_id, 3600)).secret
            pay(api, key)
            await deliver_all(c)
            # A second rotation inside the overlap: the oldest secret stops at once.
            third = (await c.webhooks.rotate_secret(actor, ORIGIN, endpoint_id, 3600)).secret
            pay(api, key)
            await deliver_all(c)
            # Ending the overlap now: one signature again.
            fourth = (await c.webhooks.rotate_secret(actor, ORIGIN, endpoint_id, 0)).secret
            pay(api, key)
            await deliver_all(c)
    overlap, later, alone = (r.headers["clearport-signature"] for r in receiver.received)
    now = time.time()
    assert len(signatures(overlap)) == 2
    for secret in (first, second):
        assert verify(receiver.received[0].body, overlap, secret, now=now)
    assert len(signatures(later)) == 2
    assert verify(receiver.received[1].body, later, third, now=now)
    assert verify(receiver.received[1].body, later, second, now=now)
    assert not verify(receiver.received[1].body, later, first, now=now)
    assert len(signatures(alone)) == 1
    assert verify(receiver.received[2].body, alone, fourth, now=now)
    with pg(api.database_url) as conn:  # retired secrets are destroyed, not kept
        assert conn.execute("SELECT count(*) FROM vault_secrets").fetchone() == (1,)


async def test_retries_until_the_receiver_succeeds(
    api: Api, settings: Settings, database_url: str
) -> None:
    merchant_id, key = api.merchant()
    clock = ShiftedClock()
    with receiving(plan=["500", "503", "reset"]) as receiver:
        async with webhook_container(settings, database_url, clock=clock) as c:
            endpoint_id, _ = await _endpoint(c, merchant_id, receiver.url)
            pay(api, key)
            await deliver_all(c)
            for sent in (1, 2, 3):
                await deliver_all(c)  # nothing is due before its retry time
                assert len(receiver.received) == sent
                clock.offset += timedelta(hours=1)
                await deliver_all(c)
            status = await c.webhooks.get_endpoint(merchant(merchant_id), endpoint_id)
    attempts = _attempts(api, endpoint_id)
    assert [(a, s) for a, s, _, _ in attempts] == [(1, 500), (2, 503), (3, None), (4, 200)]
    assert attempts[2][2] is not None  # the reset is an error, retried
    assert all(retry is not None for *_, retry in attempts[:3]) and attempts[3][3] is None
    assert len({r.headers["clearport-event-id"] for r in receiver.received}) == 1
    assert status.failing_since is None  # the success forgave the failures
    with pg(api.database_url) as conn:
        assert conn.execute("SELECT status FROM webhook_deliveries").fetchall() == [("succeeded",)]


async def test_nothing_is_sent_before_its_retry_time(
    api: Api, settings: Settings, database_url: str
) -> None:
    merchant_id, key = api.merchant()
    clock = ShiftedClock()
    with receiving(plan=["500"]) as receiver:
        async with webhook_container(settings, database_url, clock=clock) as c:
            endpoint_id, _ = await _endpoint(c, merchant_id, receiver.url)
            pay(api, key)
            await deliver_all(c)
            await deliver_all(c)
            assert len(receiver.received) == 1
            ((_, _, _, retry_at),) = _attempts(api, endpoint_id)
            # Equal jitter: between half and all of the first backoff (60 s here).
            delay = (retry_at - clock.now()).total_seconds()
            assert 25 <= delay <= 60
            clock.offset += timedelta(seconds=61)
            await deliver_all(c)
    assert len(receiver.received) == 2


async def test_each_endpoint_receives_in_sequence_order(
    api: Api, settings: Settings, database_url: str
) -> None:
    merchant_id, key = api.merchant()
    with receiving() as receiver:
        async with webhook_container(
            settings, database_url, endpoint_concurrency=1, batch_size=7
        ) as c:
            await _endpoint(c, merchant_id, receiver.url)
            for _ in range(20):
                pay(api, key, amount=101)
            await deliver_all(c)
    with pg(api.database_url) as conn:
        in_sequence = [r[0] for r in conn.execute("SELECT id FROM events ORDER BY seq")]
    assert receiver.event_ids() == in_sequence and len(in_sequence) == 20


async def test_an_event_that_commits_late_with_a_lower_sequence_is_still_delivered(
    api: Api, settings: Settings, database_url: str
) -> None:
    merchant_id, key = api.merchant()
    insert = (
        "INSERT INTO events (id, merchant_id, type, object_id, data, created_at)"
        " VALUES (%s, %s, 'payment.captured', 'pay_x', '{\"object\": {}}', now()) RETURNING seq"
    )
    with receiving() as receiver:
        async with webhook_container(settings, database_url) as c:
            await _endpoint(c, merchant_id, receiver.url)
            with psycopg.connect(database_url) as slow:  # a transaction still in flight
                row = slow.execute(insert, ("evt_late", merchant_id)).fetchone()
                assert row is not None
                late_seq = row[0]
                pay(api, key)  # commits first, with a higher sequence
                await deliver_all(c)
                assert len(receiver.received) == 1
                slow.commit()
            await deliver_all(c)
    with pg(api.database_url) as conn:
        first = conn.execute("SELECT seq FROM events WHERE id <> 'evt_late'").fetchone()
    assert first is not None and first[0] > late_seq
    assert receiver.event_ids()[-1] == "evt_late" and len(receiver.received) == 2


async def test_disabled_endpoints_stop_receiving(
    api: Api, settings: Settings, database_url: str
) -> None:
    merchant_id, key = api.merchant()
    actor = merchant(merchant_id)
    with receiving() as receiver:
        async with webhook_container(settings, database_url) as c:
            endpoint_id, _ = await _endpoint(c, merchant_id, receiver.url)
            pay(api, key)
            await c.webhooks.relay(100)  # a delivery pending ...
            disabled = EndpointPatch(status=EndpointStatus.DISABLED)
            await c.webhooks.update_endpoint(actor, ORIGIN, endpoint_id, disabled)
            pay(api, key)  # ... and an event after
            await deliver_all(c)
            assert receiver.received == []
            enabled = EndpointPatch(status=EndpointStatus.ENABLED)
            await c.webhooks.update_endpoint(actor, ORIGIN, endpoint_id, enabled)
            pay(api, key, amount=777)
            await deliver_all(c)
    ((event_id,),) = [(json.loads(r.body)["data"]["object"]["amount"],) for r in receiver.received]
    assert event_id == 777
    with pg(api.database_url) as conn:
        statuses = conn.execute("SELECT status FROM webhook_deliveries ORDER BY id").fetchall()
    assert statuses == [("cancelled",), ("succeeded",)]


async def test_an_endpoint_failing_for_three_days_is_disabled(
    api: Api, settings: Settings, database_url: str
) -> None:
    merchant_id, key = api.merchant()
    clock = ShiftedClock()
    with receiving(default="500") as failing, receiving() as watcher:
        async with webhook_container(settings, database_url, clock=clock) as c:
            endpoint_id, _ = await _endpoint(c, merchant_id, failing.url)
            await _endpoint(c, merchant_id, watcher.url, ["webhook_endpoint.disabled"])
            pay(api, key)
            for _ in range(80):  # every 90 minutes for five days, as long as it stays enabled
                await deliver_all(c)
                endpoint = await c.webhooks.get_endpoint(merchant(merchant_id), endpoint_id)
                if endpoint.status is EndpointStatus.DISABLED:
                    break
                clock.offset += timedelta(minutes=90)
            assert endpoint.status is EndpointStatus.DISABLED
            assert endpoint.disabled_reason == "failing"
            assert endpoint.failing_since is not None
            # Its delivery was tried for its whole three days (the last attempt at the
            # deadline), in vain: failing since that delivery was due.
            assert clock.now() - endpoint.failing_since >= timedelta(days=3)
            attempts_then = len(failing.received)
            pay(api, key)
            clock.offset += timedelta(hours=6)
            await deliver_all(c)
            await deliver_all(c)
    assert len(failing.received) == attempts_then  # nothing more for a disabled endpoint
    (notice,) = [json.loads(r.body) for r in watcher.received]
    assert notice["type"] == "webhook_endpoint.disabled"
    assert notice["data"]["object"]["id"] == endpoint_id
    assert notice["data"]["object"]["status"] == "disabled"
    with pg(api.database_url) as conn:
        audited = conn.execute(
            "SELECT actor, outcome FROM audit_events WHERE event_type ="
            " 'webhook_endpoint.disabled' AND resource = %s",
            (endpoint_id,),
        ).fetchall()
    assert audited == [("system:webhooks", "success")]


async def test_hostile_receivers_are_bounded_and_do_not_stall_others(
    api: Api, settings: Settings, database_url: str
) -> None:
    merchant_id, key = api.merchant()
    with (
        receiving(default="hang") as hanging,
        receiving(default="big") as big,
        receiving(default="reset") as resetting,
        receiving() as healthy,
    ):
        async with webhook_container(settings, database_url, timeout_s=1.0) as c:
            ids = {
                name: (await _endpoint(c, merchant_id, r.url))[0]
                for name, r in (
                    ("hang", hanging),
                    ("big", big),
                    ("reset", resetting),
                    ("healthy", healthy),
                )
            }
            pay(api, key)
            relayed = await c.webhooks.relay(100)
            assert set(relayed.endpoint_ids) == set(ids.values())
            # All four at once, as concurrent jobs would run them.
            await asyncio.gather(*(c.webhooks.deliver(e) for e in ids.values()))
    outcome = {name: _attempts(api, endpoint_id) for name, endpoint_id in ids.items()}
    assert outcome["healthy"][0][1] == 200
    assert outcome["big"][0][1:3] == (200, None)  # answered; read to the bound, then closed
    assert outcome["hang"][0][1:3] == (None, "timeout")
    assert outcome["reset"][0][1] is None and outcome["reset"][0][2]
    for name in ("hang", "reset"):
        assert outcome[name][0][3] is not None, name  # retried later


async def test_a_redirect_is_not_followed(api: Api, settings: Settings, database_url: str) -> None:
    merchant_id, key = api.merchant()
    with receiving() as target, receiving(default=f"302 {target.url}") as redirecting:
        async with webhook_container(settings, database_url) as c:
            endpoint_id, _ = await _endpoint(c, merchant_id, redirecting.url)
            pay(api, key)
            await deliver_all(c)
    assert target.received == [] and len(redirecting.received) == 1
    ((_, status, error, retry_at),) = _attempts(api, endpoint_id)
    assert (status, error) == (302, "redirect_not_followed") and retry_at is not None


async def test_a_name_that_turns_to_the_metadata_address_is_refused_at_delivery(
    api: Api, settings: Settings, database_url: str
) -> None:
    """DNS that changes after create (rebinding): every delivery resolves and checks again."""
    merchant_id, key = api.merchant()
    with receiving(host="hooks.example.test") as receiver:
        resolver = FakeResolver({"hooks.example.test": ["127.0.0.1"]})
        async with webhook_container(settings, database_url, resolver=resolver) as c:
            endpoint_id, _ = await _endpoint(c, merchant_id, receiver.url)
            resolver.names["hooks.example.test"] = [ip_address("169.254.169.254")]
            pay(api, key)
            await deliver_all(c)
    assert receiver.received == []
    ((_, status, error, retry_at),) = _attempts(api, endpoint_id)
    assert status is None and error.startswith("refused:") and "metadata" in error
    assert retry_at is not None


def _tls(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, Path]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(server)
    bundle = tmp_path / f"ca-{name}.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return server, bundle


async def test_tls_goes_to_the_pinned_address_and_checks_the_name(
    api: Api, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    merchant_id, key = api.merchant()
    server, bundle = _tls(tmp_path, "hooks.example.test")
    resolver = FakeResolver(
        {"hooks.example.test": ["127.0.0.1"], "other.example.test": ["127.0.0.1"]}
    )
    with (
        receiving(tls=server, host="hooks.example.test") as good,
        receiving(tls=server, host="other.example.test") as wrong_name,
    ):
        async with webhook_container(
            settings, database_url, resolver=resolver, ca_bundle=bundle
        ) as c:
            _, secret = await _endpoint(c, merchant_id, good.url)
            wrong_id, _ = await _endpoint(c, merchant_id, wrong_name.url)
            pay(api, key)
            await deliver_all(c)
            asked = list(resolver.asked)
    (got,) = good.received
    assert got.headers["host"] == f"hooks.example.test:{good.port}"
    assert verify(got.body, got.headers["clearport-signature"], secret, now=time.time())
    # The certificate names hooks.example.test only: the other name fails verification.
    assert wrong_name.received == []
    ((_, status, error, _),) = _attempts(api, wrong_id)
    assert status is None and error == "tls_error"
    # Resolved at create and once per delivery batch, never again for the connection.
    assert asked.count("hooks.example.test") == 2


async def test_platform_endpoints_receive_platform_events_only(
    api: Api, settings: Settings, database_url: str
) -> None:
    merchant_id, key = api.merchant()
    with receiving() as platform, receiving() as merchants:
        async with webhook_container(settings, database_url) as c:
            await _endpoint(c, None, platform.url, ["*"])
            await _endpoint(c, merchant_id, merchants.url, ["*"])
            pay(api, key)
            with pg(api.database_url) as conn:
                conn.execute(
                    "INSERT INTO events (id, merchant_id, type, object_id, data, created_at)"
                    " VALUES ('evt_run', NULL, 'settlement_run.completed', 'sr_1',"
                    " '{\"object\": {}}', now())"
                )
            await deliver_all(c)
    assert platform.event_ids() == ["evt_run"]
    assert [json.loads(r.body)["type"] for r in merchants.received] == ["payment.authorized"]


async def test_redeliver_sends_an_event_again(
    api: Api, settings: Settings, database_url: str
) -> None:
    merchant_id, key = api.merchant()
    with receiving() as receiver:
        async with webhook_container(settings, database_url) as c:
            endpoint_id, _ = await _endpoint(c, merchant_id, receiver.url)
            pay(api, key)
            await deliver_all(c)
            (event_id,) = receiver.event_ids()
            again = api.call(
                "POST",
                f"/v1/events/{event_id}/redeliver",
                key,
                json={"endpoint": endpoint_id},
            )
            assert again.status_code == 202, again.text
            await deliver_all(c)
    assert receiver.event_ids() == [event_id, event_id]


async def test_retention_purges_old_attempts(
    api: Api, settings: Settings, database_url: str
) -> None:
    merchant_id, key = api.merchant()
    clock = ShiftedClock()
    with receiving() as receiver:
        async with webhook_container(
            settings, database_url, clock=clock, events_retention_days=31
        ) as c:
            endpoint_id, _ = await _endpoint(c, merchant_id, receiver.url)
            pay(api, key)
            await deliver_all(c)
            await c.webhooks.rotate_secret(merchant(merchant_id), ORIGIN, endpoint_id, 60)
            kept = await c.webhooks.purge(1000)
            assert (kept.attempts, kept.deliveries, kept.events, kept.secrets) == (0, 0, 0, 0)
            clock.offset += timedelta(days=30, minutes=1)
            purged = await c.webhooks.purge(1000)
            assert (purged.attempts, purged.deliveries, purged.secrets) == (1, 1, 1)
            assert purged.events == 0  # events are kept longer
            clock.offset += timedelta(days=2)
            assert (await c.webhooks.purge(1000)).events == 1
    with pg(api.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM vault_secrets").fetchone() == (1,)


def _readme_verify() -> Any:
    """The README's ten-line verification example, run as a receiver would copy it."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Webhooks") :]
    code = section[section.index("```python\n") + len("```python\n") :]
    code = code[: code.index("```")]
    assert len(code.strip().splitlines()) <= 12
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    return namespace["verify"]


async def test_the_readme_example_verifies_a_real_delivery(
    api: Api, settings: Settings, database_url: str
) -> None:
    readme_verify = _readme_verify()
    merchant_id, key = api.merchant()
    with receiving() as receiver:
        async with webhook_container(settings, database_url) as c:
            endpoint_id, secret = await _endpoint(c, merchant_id, receiver.url)
            pay(api, key)
            await deliver_all(c)
            rotated = await c.webhooks.rotate_secret(merchant(merchant_id), ORIGIN, endpoint_id)
            pay(api, key)
            await deliver_all(c)
    first, second = receiver.received
    header = first.headers["clearport-signature"]
    assert readme_verify(first.body, header, secret)
    assert not readme_verify(first.body + b" ", header, secret)
    assert not readme_verify(first.body, header, rotated.secret)
    # The five-minute tolerance: a valid signature made 4 minutes ago passes, 6 minutes not.
    now = int(time.time())
    assert readme_verify(first.body, signature_header([secret], now - 240, first.body), secret)
    assert not readme_verify(first.body, signature_header([secret], now - 360, first.body), secret)
    for either in (secret, rotated.secret):  # both sign during the overlap
        assert readme_verify(second.body, second.headers["clearport-signature"], either)
