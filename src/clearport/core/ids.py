"""Prefixed, time-ordered identifiers: `mer_01JD3...`.

Layout after the prefix: 10 Crockford base32 characters of milliseconds since the epoch, then 16
random ones (80 bits). Lexicographic order is creation order, so B-tree inserts stay at the right
edge and `ORDER BY id DESC` is "newest first" for cursor pagination.

`new_ids` makes many at once (a settlement partition needs ~25,000): one clock read and one random
draw for all of them, the same layout; ids made in one call share their millisecond, as ids made
within one millisecond always have.
"""

from __future__ import annotations

import re
import secrets
import time

from clearport.core.errors import Field, InvalidRequest

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BODY_LEN = 26
# The part after the prefix as a regular expression: the OpenAPI document declares it too.
ID_BODY_PATTERN = "[0-9A-HJKMNP-TV-Z]{26}"
_ID_RE = re.compile(rf"^([a-z]{{2,5}})_({ID_BODY_PATTERN})$")

PREFIXES = frozenset(
    {
        "mer",
        "key",
        "req",
        "tok",
        "pay",
        "rfd",
        "evt",
        "stl",
        "po",
        "sr",
        "aud",
        "att",
        "txn",
        "we",
        "dek",
        "ba",
        "itm",
        "tr",
        "rot",
        "sec",
        "wd",
        "dp",
        "dpr",
        "adj",
        "file",
        "con",
        "rc",
        "rcx",
        "rrs",  # routing rule set
        "rks",  # risk rule set
        "rsim",  # routing simulation (a replay's report)
    }
)


# A random byte -> one of the 32 characters: 256 is a multiple of 32, so each character is equally
# likely and 16 bytes give the 16 random characters (80 bits) without a big integer per id.
_RANDOM_TO_ALPHABET = bytes(_ALPHABET.encode()[b % 32] for b in range(256))
_RANDOM_LEN = 16


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str, *, now_ms: int | None = None) -> str:
    return new_ids(prefix, 1, now_ms=now_ms)[0]


def new_ids(prefix: str, count: int, *, now_ms: int | None = None) -> list[str]:
    """`count` ids of one kind, made at one millisecond (`now_ms`, else the clock's)."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    head = f"{prefix}_{_encode(ms, 10)}"
    body = secrets.token_bytes(_RANDOM_LEN * count).translate(_RANDOM_TO_ALPHABET).decode()
    return [head + body[i : i + _RANDOM_LEN] for i in range(0, _RANDOM_LEN * count, _RANDOM_LEN)]


def id_pattern(prefix: str | tuple[str, ...] | None = None) -> str:
    """The regular expression an id of this kind (of one of these kinds; of any kind when
    `prefix` is None) matches."""
    prefixes = (prefix,) if isinstance(prefix, str) else prefix
    if prefixes is None:
        return f"^[a-z]{{2,5}}_{ID_BODY_PATTERN}$"
    unknown = [p for p in prefixes if p not in PREFIXES]
    if unknown or not prefixes:
        raise ValueError(f"unknown id prefix {unknown!r}")
    kinds = prefixes[0] if len(prefixes) == 1 else "(?:" + "|".join(prefixes) + ")"
    return f"^{kinds}_{ID_BODY_PATTERN}$"


def is_id(value: str, prefix: str) -> bool:
    m = _ID_RE.fullmatch(value)  # `$` alone would let a trailing newline through
    return m is not None and m.group(1) == prefix


def parse_id(value: object, prefix: str | tuple[str, ...], *, field: Field | str) -> str:
    """Return `value` if it is a well-formed id of this kind (of one of these kinds), else a 400
    naming `field`."""
    prefixes = (prefix,) if isinstance(prefix, str) else prefix
    if not isinstance(value, str) or not any(is_id(value, p) for p in prefixes):
        kinds = " or ".join(f"'{p}_'" for p in prefixes)
        raise InvalidRequest(f"'{{field}}' must be an id starting with {kinds}.", field=field)
    return value
