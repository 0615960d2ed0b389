"""The idempotency service over the shipped fake store: a retry is recognised by its
parameters, and keys stored before request hashes carried a version keep replaying."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clearport.core.errors import IdempotencyInProgress, IdempotencyMismatch, InvalidRequest
from clearport.idempotency.fake import FakeEntry, FakeIdempotencyStore
from clearport.idempotency.service import IdempotencyClaim, IdempotencyService, Replay
from tests.unit.test_idempotency_canonical import SECRET, legacy_hash

PATH = "/v1/merchants"
BODY = b'{"name": "Acme", "pricing": {"model": "blended", "percent_bps": 250, "fixed_minor": 30}}'
REORDERED = b'{"pricing":{"fixed_minor":30,"model":"blended","percent_bps":250},\n "name":"Acme"}'
OTHER_VALUE = BODY.replace(b"250", b"251")
LOCK_TIMEOUT_S = 60


class HandClock:
    def __init__(self) -> None:
        self.at = datetime(2030, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> HandClock:
    return HandClock()


@pytest.fixture
def store(clock: HandClock) -> FakeIdempotencyStore:
    return FakeIdempotencyStore(clock)


@pytest.fixture
def service(store: FakeIdempotencyStore) -> IdempotencyService:
    return IdempotencyService(store, SECRET, ttl_s=86_400, lock_timeout_s=LOCK_TIMEOUT_S)


async def begin(service: IdempotencyService, body: bytes) -> IdempotencyClaim | Replay:
    return await service.begin("mer_1", "k", service.request_hash("POST", PATH, body))


async def test_reordered_keys_and_other_whitespace_replay(service: IdempotencyService) -> None:
    claim = await begin(service, BODY)
    assert isinstance(claim, IdempotencyClaim)
    await service.finish(claim, 201, b'{"id":"mer_x"}')
    assert await begin(service, REORDERED) == Replay(201, b'{"id":"mer_x"}')


async def test_a_different_value_is_a_mismatch(service: IdempotencyService) -> None:
    claim = await begin(service, BODY)
    assert isinstance(claim, IdempotencyClaim)
    await service.finish(claim, 201, b'{"id":"mer_x"}')
    with pytest.raises(IdempotencyMismatch):
        await begin(service, OTHER_VALUE)


async def test_an_empty_body_and_an_empty_object_are_one_request(
    service: IdempotencyService,
) -> None:
    claim = await begin(service, b"")
    assert isinstance(claim, IdempotencyClaim)
    await service.finish(claim, 201, b'{"id":"key_x"}')
    assert await begin(service, b"{}") == Replay(201, b'{"id":"key_x"}')


def legacy_entry(
    clock: HandClock, body: bytes, *, response: bytes | None = None, resource_id: str | None = None
) -> FakeEntry:
    """An entry as the store held it before hashes carried a version: in progress, or
    completed with `response`."""
    entry = FakeEntry(legacy_hash("POST", PATH, body), clock.at, clock.at, resource_id=resource_id)
    if response is not None:
        entry.state, entry.response_status, entry.response_body = "completed", 201, response
    return entry


async def test_a_key_stored_before_versioning_still_replays(
    service: IdempotencyService, store: FakeIdempotencyStore, clock: HandClock
) -> None:
    store.entries[("mer_1", "k")] = legacy_entry(clock, BODY, response=b'{"id":"old"}')
    assert await begin(service, BODY) == Replay(201, b'{"id":"old"}')
    # The old format compared bytes: anything else, even reordered, stays a different request.
    for body in (OTHER_VALUE, REORDERED):
        with pytest.raises(IdempotencyMismatch):
            await begin(service, body)


async def test_an_abandoned_claim_stored_before_versioning_is_taken_over(
    service: IdempotencyService, store: FakeIdempotencyStore, clock: HandClock
) -> None:
    store.entries[("mer_1", "k")] = legacy_entry(clock, BODY, resource_id="pay_1")
    with pytest.raises(IdempotencyInProgress):
        await begin(service, BODY)
    clock.at += timedelta(seconds=LOCK_TIMEOUT_S + 1)
    with pytest.raises(IdempotencyMismatch):
        await begin(service, OTHER_VALUE)
    claim = await begin(service, BODY)
    assert isinstance(claim, IdempotencyClaim) and claim.recovered_resource == "pay_1"
    # Taken over under the current format, so the canonical rules apply from now on.
    await service.finish(claim, 201, b'{"id":"pay_1"}')
    assert await begin(service, REORDERED) == Replay(201, b'{"id":"pay_1"}')


async def test_unsupported_media_type_is_not_stored(service: IdempotencyService) -> None:
    claim = await begin(service, BODY)
    assert isinstance(claim, IdempotencyClaim)
    await service.finish(claim, 415, b'{"error":{}}')
    assert isinstance(await begin(service, BODY), IdempotencyClaim)


NOT_PRINTABLE_ASCII = ["", " ", " padded", "padded ", "caf\u00e9", "tab\there", "a" * 256]


@pytest.mark.parametrize("key", NOT_PRINTABLE_ASCII)
async def test_a_key_that_is_not_printable_ascii_is_refused(
    service: IdempotencyService, key: str
) -> None:
    # One rule, the document's pattern: HTTP strips a header's outer spaces, and latin-1 is no
    # way to carry other characters, so a key outside printable ASCII would not survive a retry.
    request_hash = service.request_hash("POST", PATH, BODY)
    with pytest.raises(InvalidRequest) as caught:
        await service.begin("mer_1", key, request_hash)
    assert caught.value.field == ("Idempotency-Key",)


@pytest.mark.parametrize("key", ["k", "order-1234 retry 2", "~!@#$%^&*()", "a" * 255])
async def test_printable_ascii_keys_are_claimed(service: IdempotencyService, key: str) -> None:
    request_hash = service.request_hash("POST", PATH, BODY)
    assert isinstance(await service.begin("mer_1", key, request_hash), IdempotencyClaim)
