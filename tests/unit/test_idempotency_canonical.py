"""The canonical form of a request body and its versioned, keyed hash (docs/decisions/0014)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from clearport.idempotency.domain import (
    CANONICAL_JSON_V2,
    LEGACY_HASH_LEN,
    canonical_body,
    hash_request,
)

SECRET = b"unit-test-secret"


def legacy_hash(method: str, path: str, body: bytes) -> bytes:
    """The request hash as Clearport stored it before hashes carried a version."""
    mac = hmac.new(SECRET, digestmod=hashlib.sha256)
    for part in (method.encode(), path.encode(), body):
        mac.update(len(part).to_bytes(8, "big"))
        mac.update(part)
    return mac.digest()


def same(a: bytes, b: bytes) -> bool:
    first, second = (hash_request(SECRET, "POST", "/v1/x", body) for body in (a, b))
    return first.matches(second.current)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (b'{"a":1,"b":2}', b'{"b":2,"a":1}'),
        (b'{"a":{"y":[1,{"q":1,"p":2}],"x":true}}', b'{"a":{"x":true,"y":[1,{"p":2,"q":1}]}}'),
        (b'{"a": 1, "b": [1, 2]}', b'\n{\r\n\t"a" :1 ,"b":[ 1,2 ] }\n'),
        (b'{"s":"\\u00e9"}', '{"s":"é"}'.encode()),
        (b'{"s":"\\u00E9\\/"}', '{"s":"é/"}'.encode()),
        (b'{"s":"\\ud83d\\ude00"}', '{"s":"😀"}'.encode()),
        (b'{"n":1.0}', b'{"n":1.00}'),
        (b'{"n":1.0}', b'{"n":1e0}'),
        (b'{"n":100000.0}', b'{"n":1E5}'),
        (b'{"n":0}', b'{"n":-0}'),
        (b"", b"{}"),
        (b"", b" { } "),
    ],
)
def test_the_same_parameters_hash_the_same(first: bytes, second: bytes) -> None:
    assert same(first, second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (b'{"a":1}', b'{"a":2}'),
        (b'{"a":{"b":1}}', b'{"a":{"b":"1"}}'),
        # Strict bodies refuse 1.0 for an integer: a different request, not a replay.
        (b'{"n":1}', b'{"n":1.0}'),
        (b'{"a":[1,2]}', b'{"a":[2,1]}'),
        (b'{"a":null}', b"{}"),
        # Not Unicode-normalised: precomposed and combining forms are different strings.
        ('{"s":"é"}'.encode(), '{"s":"e\u0301"}'.encode()),
        # A body that is not JSON never matches one that is.
        (b"{}", b"{"),
        (b"", b"   "),
        # Duplicate keys are refused by the API; they never match the last-wins reading.
        (b'{"a":1,"a":2}', b'{"a":2}'),
    ],
)
def test_different_parameters_hash_differently(first: bytes, second: bytes) -> None:
    assert not same(first, second)


def test_method_and_path_are_part_of_the_request() -> None:
    body = b'{"a":1}'
    base = hash_request(SECRET, "POST", "/v1/a", body)
    assert not base.matches(hash_request(SECRET, "POST", "/v1/b", body).current)
    assert not base.matches(hash_request(SECRET, "PUT", "/v1/a", body).current)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe\x00garbage",  # not UTF-8
        b'{"n":NaN}',
        b'{"n":Infinity}',
        b'{"n":1e400}',  # would be infinity, like 2e400
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the parser goes
        b'{"n":' + b"9" * 5_000 + b"}",  # longer than Python converts
        b'{"s":"\\ud800"}',  # a lone surrogate: JSON, escaped back as it came
    ],
)
def test_any_body_hashes_deterministically(body: bytes) -> None:
    first = hash_request(SECRET, "POST", "/v1/x", body)
    assert first == hash_request(SECRET, "POST", "/v1/x", body)
    assert first.current != hash_request(SECRET, "POST", "/v1/x", body + b" x").current


def test_infinite_numbers_are_not_one_request() -> None:
    assert not same(b'{"n":1e400}', b'{"n":2e400}')
    assert canonical_body(b'{"n":1e400}') == (b"raw", b'{"n":1e400}')


def test_canonical_text() -> None:
    body = '{ "b": [1, 2.50, -0.0, "é"], "a": {"d": null, "c": true} }'.encode()
    assert canonical_body(body) == (
        b"json",
        b'{"a":{"c":true,"d":null},"b":[1,2.5,-0.0,"\\u00e9"]}',
    )


def test_the_hash_is_keyed_and_versioned() -> None:
    request = hash_request(SECRET, "POST", "/v1/x", b'{"a":1}')
    assert request.current[0] == CANONICAL_JSON_V2
    assert len(request.current) == 1 + 32 != LEGACY_HASH_LEN
    assert not request.matches(hash_request(b"another", "POST", "/v1/x", b'{"a":1}').current)


def test_a_hash_stored_before_versioning_is_recognised() -> None:
    body = b'{"a": 1, "b": 2}'
    request = hash_request(SECRET, "POST", "/v1/x", body)
    assert request.legacy == legacy_hash("POST", "/v1/x", body)
    assert request.matches(legacy_hash("POST", "/v1/x", body))
    assert request.matches(request.current)
    # The legacy format compared bytes: a reordered body was, and stays, a different request.
    assert not request.matches(legacy_hash("POST", "/v1/x", b'{"b": 2, "a": 1}'))
    assert not request.matches(legacy_hash("POST", "/v1/x", b'{"a": 1, "b": 3}'))
