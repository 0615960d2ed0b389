"""Failed authentications lock the client address out (PCI DSS 8.3.4, docs/decisions/0015):
ten failures within the window and every request from that address, valid key or not, gets the
401 an unknown key gets, until the lockout ends; other addresses are unaffected; everything is
audited and counted in PostgreSQL, so it holds across processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from clearport.access.domain import Origin
from clearport.config import Settings
from clearport.core.errors import AuthenticationFailed
from clearport.http.app import create_app
from clearport.wiring import Container, build_container
from tests.conftest import truncate_all
from tests.support import Api, ThreadedServer, pg

HERE, ELSEWHERE = "127.0.0.1", "127.0.0.2"  # two loopback source addresses
MAX_FAILURES = 10
LOCKOUT_S = WINDOW_S = 1800  # the defaults
PATH = "/v1/merchants"
UNKNOWN_KEY = "ok_" + "0" * 32
# Stated, not inherited: the environment the tests run in may set its own.
POLICY = {
    "auth_max_failures": MAX_FAILURES,
    "auth_failure_window_s": WINDOW_S,
    "auth_lockout_s": LOCKOUT_S,
}


class HandClock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def module_clock() -> HandClock:
    return HandClock()


@pytest.fixture
def clock(module_clock: HandClock, database_url: str) -> Iterator[HandClock]:
    module_clock.at = datetime.now(UTC)
    yield module_clock
    truncate_all(database_url)


@pytest.fixture(scope="module")
def lockout_server(
    database_url: str, settings: Settings, module_clock: HandClock
) -> Iterator[ThreadedServer]:
    """The API on the default lockout policy, its clock moved by hand."""
    configured = settings.model_copy(update={"db_pool_min": 1, "db_pool_max": 4, **POLICY})
    container = build_container(configured, database_url, clock=module_clock)
    server = ThreadedServer(create_app(container))
    server.start()
    yield server
    server.stop()


def _client_at(address: str, server: ThreadedServer, database_url: str) -> Iterator[Api]:
    with httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30) as http:
        yield Api(server.url, database_url, http)


@pytest.fixture
def here(lockout_server: ThreadedServer, database_url: str, clock: HandClock) -> Iterator[Api]:
    yield from _client_at(HERE, lockout_server, database_url)


@pytest.fixture
def elsewhere(lockout_server: ThreadedServer, database_url: str) -> Iterator[Api]:
    yield from _client_at(ELSEWHERE, lockout_server, database_url)


def fail(api: Api, times: int) -> list[httpx.Response]:
    responses = [api.call("GET", PATH, UNKNOWN_KEY) for _ in range(times)]
    assert {r.status_code for r in responses} == {401}
    return responses


def answer(response: httpx.Response) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Everything a client sees, but the request id and the date."""
    body = response.json()
    body["error"].pop("request_id")
    headers = {k: v for k, v in response.headers.items() if k not in ("request-id", "date")}
    return response.status_code, body, headers


def audit_rows(database_url: str, event_type: str) -> list[tuple[Any, ...]]:
    with pg(database_url) as conn:
        return conn.execute(
            "SELECT origin_ip, resource, details FROM audit_events WHERE event_type = %s"
            " ORDER BY seq",
            (event_type,),
        ).fetchall()


def test_the_defaults_meet_pci_dss() -> None:
    """8.3.4: lock out after not more than 10 attempts, for at least 30 minutes."""
    fields = Settings.model_fields  # the defaults, whatever this environment sets
    assert fields["auth_max_failures"].default == MAX_FAILURES <= 10
    assert fields["auth_lockout_s"].default == LOCKOUT_S >= 30 * 60
    assert fields["auth_failure_window_s"].default == WINDOW_S


def test_ten_failures_then_a_valid_key_is_refused_with_the_identical_401(
    here: Api, elsewhere: Api
) -> None:
    admin = here.operator()
    assert here.call("GET", PATH, admin).status_code == 200
    fail(here, MAX_FAILURES)
    refused = here.call("GET", PATH, admin)
    ordinary = elsewhere.call("GET", PATH, UNKNOWN_KEY)  # an unknown key, not locked out
    assert answer(refused) == answer(ordinary)
    assert refused.json()["error"] == {
        "type": "authentication_error",
        "code": "invalid_api_key",
        "message": "Invalid API key provided.",
        "request_id": refused.headers["Request-Id"],
    }
    # Every route, every method: the address is refused, not the key.
    assert here.call("POST", PATH, admin, json={}).status_code == 401


def test_another_address_is_unaffected(here: Api, elsewhere: Api) -> None:
    admin = here.operator()
    fail(here, MAX_FAILURES)
    assert here.call("GET", PATH, admin).status_code == 401
    assert elsewhere.call("GET", PATH, admin).status_code == 200


def test_nine_failures_do_not_lock_out(here: Api) -> None:
    admin = here.operator()
    fail(here, MAX_FAILURES - 1)
    assert here.call("GET", PATH, admin).status_code == 200


def test_the_lockout_ends_after_its_period(here: Api, clock: HandClock) -> None:
    admin = here.operator()
    fail(here, MAX_FAILURES)
    clock.advance(LOCKOUT_S - 1)
    assert here.call("GET", PATH, admin).status_code == 401
    clock.advance(1)
    assert here.call("GET", PATH, admin).status_code == 200
    # The count starts afresh: the failures that locked it out are spent.
    fail(here, MAX_FAILURES - 1)
    assert here.call("GET", PATH, admin).status_code == 200
    fail(here, 1)
    assert here.call("GET", PATH, admin).status_code == 401


def test_the_window_slides(here: Api, clock: HandClock) -> None:
    """Ten failures within any window lock out, not only within windows starting at a first
    failure: nine cannot be followed by nine more the moment the first one ages out."""
    admin = here.operator()
    fail(here, 1)
    clock.advance(WINDOW_S - 1)
    fail(here, MAX_FAILURES - 2)
    clock.advance(1)  # the first failure leaves the window; the other eight are 1 s old
    fail(here, 1)
    assert here.call("GET", PATH, admin).status_code == 200
    fail(here, 1)
    assert here.call("GET", PATH, admin).status_code == 401


def test_every_kind_of_failure_counts_and_the_answers_give_nothing_away(
    here: Api, elsewhere: Api
) -> None:
    admin = here.operator()
    merchant_id, _ = here.merchant(admin)
    revoked = here.call("POST", f"{PATH}/{merchant_id}/keys", admin).json()
    here.call("DELETE", f"{PATH}/{merchant_id}/keys/{revoked['id']}", admin)
    attempts: list[str | None] = [None, "Basic x", "sk_test_short", "ok_" + "x" * 300]
    attempts += [revoked["secret"]] * 3 + [UNKNOWN_KEY] * 3
    for secret in attempts:
        headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
        assert here.call("GET", PATH, headers=headers).status_code == 401
    # Locked out: a revoked key is answered like an unknown one, no key like no key.
    assert answer(here.call("GET", PATH, revoked["secret"])) == answer(
        elsewhere.call("GET", PATH, UNKNOWN_KEY)
    )
    assert answer(here.call("GET", PATH)) == answer(elsewhere.call("GET", PATH))
    assert here.call("GET", PATH, admin).status_code == 401


def test_the_failures_and_the_lockout_are_audited(here: Api, database_url: str) -> None:
    admin = here.operator()
    fail(here, MAX_FAILURES)
    here.call("GET", PATH, admin)
    failed = audit_rows(database_url, "auth.failed")
    assert [(ip, details["reason"]) for ip, _, details in failed] == [
        (HERE, "unknown_key")
    ] * MAX_FAILURES + [(HERE, "address_locked")]
    # The tenth failure is the one that locked the address out.
    assert [d["locked_out"] for _, _, d in failed] == [False] * 9 + [True, True]
    (locked,) = audit_rows(database_url, "auth.locked_out")
    ip, resource, details = locked
    assert (ip, resource) == (HERE, f"address:{HERE}")
    assert details["failures"] == MAX_FAILURES
    assert (details["window_s"], details["lockout_s"]) == (WINDOW_S, LOCKOUT_S)
    assert datetime.fromisoformat(details["locked_until"]) > datetime.now(UTC)
    # No presented key reaches the trail.
    assert UNKNOWN_KEY not in str(failed) and admin not in str(failed)


def test_rows_that_say_nothing_any_more_are_forgotten(
    here: Api, elsewhere: Api, clock: HandClock, database_url: str
) -> None:
    def subjects() -> set[str]:
        with pg(database_url) as conn:
            return {row[0] for row in conn.execute("SELECT subject FROM auth_failures")}

    fail(here, MAX_FAILURES)
    clock.advance(LOCKOUT_S - 1)
    fail(elsewhere, 1)
    assert subjects() == {HERE, ELSEWHERE}  # still locked out: kept
    clock.advance(2)
    fail(elsewhere, 1)
    assert subjects() == {ELSEWHERE}


# --- across processes: the authenticators of several containers, each with its own pool ----


@asynccontextmanager
async def containers(
    database_url: str, settings: Settings, clock: HandClock, count: int, **overrides: Any
) -> AsyncIterator[list[Container]]:
    configured = settings.model_copy(
        update={"db_pool_min": 1, "db_pool_max": 5, **POLICY, **overrides}
    )
    built = [build_container(configured, database_url, clock=clock) for _ in range(count)]
    for container in built:
        await container.start()
    try:
        yield built
    finally:
        for container in built:
            await container.stop()


async def refused(container: Container, secret: str, ip: str) -> bool:
    try:
        await container.authenticator.authenticate(f"Bearer {secret}", Origin(ip))
    except AuthenticationFailed:
        return True
    return False


@pytest.mark.slow
async def test_concurrent_failures_from_many_connections_are_all_counted(
    database_url: str, settings: Settings, clock: HandClock, here: Api
) -> None:
    limit, ip = 40, "198.51.100.7"
    admin = here.operator()
    async with containers(database_url, settings, clock, 3, auth_max_failures=limit) as apis:

        async def failures(first: int, last: int) -> None:
            outcomes = await asyncio.gather(
                *(refused(apis[i % len(apis)], f"ok_wrong{i:06d}", ip) for i in range(first, last))
            )
            assert all(outcomes)

        await failures(0, limit - 1)
        # Had one concurrent update been lost, the next round would not lock it out.
        assert not await refused(apis[0], admin, ip)
        await failures(limit - 1, 2 * limit)
        assert all([await refused(api, admin, ip) for api in apis])
    lockouts = audit_rows(database_url, "auth.locked_out")
    assert [details["failures"] for _, _, details in lockouts] == [limit]
    failed = audit_rows(database_url, "auth.failed")
    assert len(failed) == 2 * limit + 3
    assert sum(not details["locked_out"] for _, _, details in failed) == limit - 1


async def test_an_ipv6_client_is_counted_by_its_64(
    database_url: str, settings: Settings, clock: HandClock, here: Api
) -> None:
    admin = here.operator()
    async with containers(database_url, settings, clock, 1) as (api,):
        for host in range(MAX_FAILURES):  # a new address every time, one /64
            assert await refused(api, UNKNOWN_KEY, f"2001:db8:0:7::{host + 1:x}")
        assert await refused(api, admin, "2001:db8:0:7:ffff::1")
        assert not await refused(api, admin, "2001:db8:0:8::1")
        assert not await refused(api, admin, "198.51.100.7")
    (locked,) = audit_rows(database_url, "auth.locked_out")
    assert locked[1] == "address:2001:db8:0:7::/64"
