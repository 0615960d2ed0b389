"""Hash chains over append-only tables, and signed checkpoints of their heads.

    hash(n) = SHA-256(hash(n-1) || n (8 bytes) || source_seq (8 bytes) || canonical row)
    hash(0) = 32 zero bytes

`n` is the position in the chain (seal order); `source_seq` the sealed row's own sequence. A
checkpoint `(chain, n, hash(n))` is signed with an asymmetric key the database never holds
(Ed25519 in the local keyring, or a KMS key) and kept in the database and in object storage, so
an attacker who rewrites rows and recomputes every hash, or cuts the tail off, is still caught,
and a verifier needs only the public key (decision 0802).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
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


CHECKPOINT_FORMAT = "clearport-checkpoint/2"


def checkpoint_message(chain: str, seq: int, head: bytes) -> bytes:
    """The bytes a checkpoint signs: its format, the chain, the position and the head."""
    return f"{CHECKPOINT_FORMAT}\n{chain}\n{seq}\n{head.hex()}\n".encode()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed chain head. `key_id` names the public key (`sha256:` + 32 hex digits of its
    SubjectPublicKeyInfo), so a checkpoint signed by another key is told apart from a forged
    one without the private key."""

    chain: str
    seq: int
    head: bytes
    algorithm: str  # "ed25519" | "ecdsa-p256-sha256"
    key_id: str
    signature: bytes

    def message(self) -> bytes:
        return checkpoint_message(self.chain, self.seq, self.head)

    def to_json(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "seq": self.seq,
            "head": self.head.hex(),
            "algorithm": self.algorithm,
            "key_id": self.key_id,
            "signature": self.signature.hex(),
        }

    @staticmethod
    def from_json(item: Mapping[str, Any]) -> Checkpoint:
        """A checkpoint from its JSON form; ValueError (or KeyError) if malformed."""
        return Checkpoint(
            chain=str(item["chain"]),
            seq=int(item["seq"]),
            head=bytes.fromhex(item["head"]),
            algorithm=str(item["algorithm"]),
            key_id=str(item["key_id"]),
            signature=bytes.fromhex(item["signature"]),
        )

    def same_as(self, other: Checkpoint) -> bool:
        return self.to_json() == other.to_json()


# Says why a checkpoint's signature is not the trusted key's, or None when it is.
SignatureCheck = Callable[[Checkpoint], "str | None"]


def reconcile_checkpoints(
    chain: str, in_database: Iterable[Checkpoint], in_storage: Iterable[Checkpoint], copied: int
) -> tuple[list[Checkpoint], tuple[int, str] | None]:
    """Both copies of the checkpoints as one list, and the first disagreement between them.

    Every checkpoint up to `copied` was put into object storage before that progress was read,
    so one missing there was deleted; one in storage but not in the database was deleted from
    the database (which also refuses it by trigger); two different ones at a position were
    forged in one place. Either copy alone still proves what it holds, so both are kept."""
    db = {c.seq: c for c in in_database if c.chain == chain}
    stored = {c.seq: c for c in in_storage if c.chain == chain}
    problems: list[tuple[int, str]] = []
    for seq, cp in db.items():
        other = stored.get(seq)
        if other is None and seq <= copied:
            problems.append((seq, f"checkpoint at {seq} is missing from object storage"))
        elif other is not None and not other.same_as(cp):
            problems.append((seq, f"checkpoint at {seq} differs between database and storage"))
    for seq in stored.keys() - db.keys():
        problems.append((seq, f"checkpoint at {seq} is in object storage, not in the database"))
    merged = {**stored, **db}
    return [merged[s] for s in sorted(merged)], min(problems, default=None)


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
    # Rows newer than the last seal: not yet chained, so neither proven nor tampered.
    unsealed: int = 0

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None


def verify(
    chain: str,
    rows: Iterable[SealedRow],
    checkpoints: Iterable[Checkpoint],
    check_signature: SignatureCheck,
    *,
    unsealed: int = 0,
    also_bad: tuple[int, str] | None = None,
) -> Verdict:
    """Recompute the chain; compare every stored hash, then every checkpoint (its signature by
    `check_signature`, then its head). `also_bad` is a problem found elsewhere (the two copies
    of the checkpoints disagreeing), named when the chain itself checks out: a chain problem
    says more precisely which rows cannot be trusted."""
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
        if cp.chain != chain:
            bad = (last_good + 1, f"checkpoint at {cp.seq} belongs to chain {cp.chain}")
            break
        refused = check_signature(cp)
        if refused is not None:
            bad = (last_good + 1, refused)
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
    if bad is None:
        bad = also_bad
    return Verdict(
        chain=chain,
        length=length,
        checkpoints=len(wanted),
        first_bad_seq=None if bad is None else bad[0],
        reason=None if bad is None else bad[1],
        unsealed=unsealed,
    )


@dataclass(frozen=True, slots=True)
class TxlogEntry:
    """One state change, as the transaction log records it."""

    object_type: str  # "payment" | "refund" | "dispute" | "adjustment"
    object_id: str
    payment_id: str | None  # None for an adjustment
    merchant_id: str
    from_status: str | None
    to_status: str
    amount: int
    currency: str
    actor: str
    connector_result: dict[str, Any] | None
    occurred_at: datetime


# --- the DynamoDB mirror ---------------------------------------------------------------------

# Row fields copied out of the row text as attributes of their own, for queries on the mirror.
MIRROR_INDEXED = ("merchant_id", "object_id", "payment_id", "to_status", "occurred_at")


@dataclass(frozen=True, slots=True)
class MirrorItem:
    """One sealed txlog entry as the mirror holds it, keyed by its chain position `seq`:
    positions have no gaps, so a missing item is visible (a database identity would gap on
    every rollback)."""

    seq: int
    source_seq: int
    hash: str  # hex
    row: str  # the canonical row text that was hashed

    @staticmethod
    def of(row: SealedRow) -> MirrorItem:
        if row.row_text is None:
            raise ValueError(f"position {row.seq} has no row to mirror")
        return MirrorItem(row.seq, row.source_seq, row.stored_hash.hex(), row.row_text)

    def attributes(self) -> dict[str, str | int]:
        fields = json.loads(self.row)
        derived = {name: str(fields[name]) for name in MIRROR_INDEXED if fields.get(name)}
        return {
            "seq": self.seq,
            "source_seq": self.source_seq,
            "hash": self.hash,
            "row": self.row,
            **derived,
        }


def mirror_differences(expected: MirrorItem, actual: Mapping[str, Any]) -> list[str]:
    """The attributes in which a mirror item differs from what PostgreSQL says it must be."""
    want = expected.attributes()
    return sorted(k for k in want.keys() | actual.keys() if want.get(k) != actual.get(k))


@dataclass
class MirrorReport:
    """`verify --against dynamodb`: positions up to `mirrored_through` must all be in the mirror
    exactly as PostgreSQL has them; later ones are `pending` (the mirror lags, by design)."""

    mirrored_through: int
    compared: int = 0
    pending: int = 0
    missing: list[int] = field(default_factory=list)
    extra: list[int] = field(default_factory=list)
    differing: list[tuple[int, list[str]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.differing)


@dataclass(frozen=True, slots=True)
class TxlogPlace:
    """Where one transaction-log entry sits in the chain: its seal (position and hash) once the
    sealer has reached it, and the first signed checkpoint at or after that position."""

    txlog_seq: int
    object_id: str
    from_status: str | None
    to_status: str
    occurred_at: datetime
    chain_seq: int | None  # None: not sealed yet
    chain_hash: bytes | None
    checkpoint: Checkpoint | None  # None: no checkpoint covers it yet
    checkpoint_problem: str | None = None  # set by the service: what is wrong with its signature
