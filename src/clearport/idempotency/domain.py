"""What the idempotency store keeps: a completed request's response, and the keyed hash that
recognises a retry of the same request (docs/decisions/0014)."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from typing import Any, NoReturn


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The response a retry of the request under (scope, key) gets back, byte for byte."""

    scope: str
    key: str
    status: int
    body: bytes


# A stored hash is a version byte and an HMAC-SHA256. Hashes stored before versions existed are
# the bare 32-byte HMAC of the raw body, recognised by their length (no version byte is that
# short), so keys claimed before the upgrade keep replaying until they expire.
CANONICAL_JSON_V2 = 2
LEGACY_HASH_LEN = 32


@dataclass(frozen=True, slots=True)
class RequestHash:
    """A request as the idempotency store recognises it: `current` is what a new claim stores,
    `legacy` is what a key claimed before versioning holds for the same request."""

    current: bytes
    legacy: bytes

    def matches(self, stored: bytes) -> bool:
        """Whether `stored` (either format) was computed from this request; constant time."""
        expected = self.legacy if len(stored) == LEGACY_HASH_LEN else self.current
        return hmac.compare_digest(stored, expected)


def hash_request(server_secret: bytes, method: str, path: str, body: bytes) -> RequestHash:
    # Keyed, because bodies can hold card numbers and a plain hash of a PAN is guessable.
    form, payload = canonical_body(body)
    version = bytes([CANONICAL_JSON_V2])
    current = _mac(server_secret, version, method.encode(), path.encode(), form, payload)
    legacy = _mac(server_secret, method.encode(), path.encode(), body)
    return RequestHash(version + current.digest(), legacy.digest())


def canonical_body(body: bytes) -> tuple[bytes, bytes]:
    """The request's parameters in one spelling: (b"json", canonical JSON text), or (b"raw",
    the bytes as sent) for a body that is not JSON (it is refused later, but a claim of it must
    still hash the same every time). An empty body means no parameters: the same as `{}`.

    Canonical JSON: keys sorted (by code point) at every depth, no whitespace, strings with
    every non-ASCII character as a `\\uXXXX` escape (so `"é"` and `"\\u00e9"` agree), integers
    as their decimal digits, other numbers as the shortest text of their double (`1.0`, `1.00`
    and `1e0` agree). `1` and `1.0` differ: request bodies are strict and refuse 1.0 for an
    integer. Strings are not Unicode-normalised: the API stores what it was sent.
    """
    if not body:
        return b"json", b"{}"
    try:
        value = json.loads(
            body,
            object_pairs_hook=_object_without_duplicates,
            parse_float=_finite_float,
            parse_constant=_not_json,
        )
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
        )
    except (ValueError, RecursionError):  # not UTF-8 or not JSON, too deep, or too long a number
        return b"raw", body
    return b"json", text.encode("ascii")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # `{"a": 1, "a": 2}` is refused (400) by the API; hashed raw, it never matches `{"a": 2}`.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")
    return obj


def _finite_float(text: str) -> float:
    # 1e400 and 2e400 would both become infinity: different requests, one hash.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _not_json(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _framed(part: bytes) -> bytes:
    return len(part).to_bytes(8, "big") + part


def _mac(server_secret: bytes, *parts: bytes) -> hmac.HMAC:
    mac = hmac.new(server_secret, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(_framed(part))
    return mac
