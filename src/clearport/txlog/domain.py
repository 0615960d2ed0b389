"""Hash chains over append-only tables, and signed checkpoints of their heads.

    hash(n) = SHA-256(hash(n-1) || n (8 bytes) || source_seq (8 bytes) || canonical row)
    hash(0) = 32 zero bytes

`n` is the position in the chain (seal order); `source_seq` the sealed row's own sequence. A
checkpoint `(chain, n, hash(n))` is signed with HMAC-SHA256 and kept outside the database, so an
attacker who rewrites rows and recomputes every hash, or cuts the tail off, is still caught.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = bytes(32)


def canonical(row: Mapping[str, Any]) -> str:
    """A stable text form of a row: sorted keys, no spaces, timestamps in ISO 8601."""

    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, bytes):
            return value.hex()
        raise TypeError(f"cannot canonicalize {type(value).__name__}")

    return json.dumps(row, sort_keys=True, separators=(",", ":"), default=default)


def link(previous: bytes, seq: int, source_seq: int, row_text: str) -> bytes:
    digest = hashlib.sha256(previous)
    digest.update(seq.to_bytes(8, "big"))
    digest.update(source_seq.to_bytes(8, "big"))
    digest.update(row_text.encode())
    return digest.digest()


def checkpoint_mac(key: bytes, chain: str, seq: int, head: bytes) -> str:
    return hmac.new(key, f"{chain}:{seq}:{head.hex()}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    chain: str
    seq: int
    head: bytes
    mac: str

    def valid(self, key: bytes) -> bool:
        return hmac.compare_digest(self.mac, checkpoint_mac(key, self.chain, self.seq, self.head))


@dataclass(frozen=True, slots=True)
class SealedRow:
    """One chain position as stored: the stored hash and the row text (None if the row is gone)."""

    seq: int
    source_seq: int
    stored_hash: bytes
    row_text: str | None


@dataclass(frozen=True, slots=True)
class Verdict:
    chain: str
    length: int
    checkpoints: int
    first_bad_seq: int | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None


def verify(
    chain: str, rows: Iterable[SealedRow], checkpoints: Iterable[Checkpoint], key: bytes
) -> Verdict:
    """Recompute the chain; compare every stored hash, then every checkpoint."""
    computed: dict[int, bytes] = {}
    wanted = sorted(checkpoints, key=lambda c: c.seq)
    wanted_seqs = {c.seq for c in wanted}
    previous = GENESIS
    expected_seq = 1
    length = 0
    bad: tuple[int, str] | None = None
    for row in rows:
        if row.seq != expected_seq:
            bad = (expected_seq, f"position {expected_seq} is missing from the chain")
            break
        if row.row_text is None:
            bad = (row.seq, f"the row sealed at position {row.seq} is missing")
            break
        current = link(previous, row.seq, row.source_seq, row.row_text)
        if not hmac.compare_digest(current, row.stored_hash):
            bad = (row.seq, f"position {row.seq} does not match its hash")
            break
        if row.seq in wanted_seqs:
            computed[row.seq] = current
        previous = current
        length = row.seq
        expected_seq += 1
    last_good = 0
    for cp in wanted:
        if bad is not None and cp.seq >= bad[0]:
            break
        if not cp.valid(key):
            bad = (last_good + 1, f"checkpoint at {cp.seq} has a bad signature")
            break
        if cp.seq > length:
            bad = (length + 1, f"checkpoint at {cp.seq} but the chain ends at {length}")
            break
        if not hmac.compare_digest(computed[cp.seq], cp.head):
            bad = (
                last_good + 1,
                f"checkpoint at {cp.seq} disagrees: rewritten between {last_good + 1} and {cp.seq}",
            )
            break
        last_good = cp.seq
    return Verdict(
        chain=chain,
        length=length,
        checkpoints=len(wanted),
        first_bad_seq=None if bad is None else bad[0],
        reason=None if bad is None else bad[1],
    )


@dataclass(frozen=True, slots=True)
class TxlogEntry:
    """One state change, as the transaction log records it."""

    object_type: str  # "payment" | "refund"
    object_id: str
    payment_id: str
    merchant_id: str
    from_status: str | None
    to_status: str
    amount: int
    currency: str
    actor: str
    connector_result: dict[str, Any] | None
    occurred_at: datetime
