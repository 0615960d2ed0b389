"""Checkpoints without a database: Ed25519 signatures checked by the public key alone, the two
copies of the checkpoints reconciled, the export file, and a verdict that never calls an export
tampered because newer checkpoints exist elsewhere."""

from __future__ import annotations

import os

import pytest

from clearport.txlog.domain import (
    GENESIS,
    Checkpoint,
    MirrorItem,
    SealedRow,
    canonical,
    checkpoint_message,
    link,
    mirror_differences,
    reconcile_checkpoints,
    verify,
)
from clearport.txlog.export_file import export_lines, read_export
from clearport.txlog.signatures import Ed25519CheckpointSigner, PublicKeyVerifier


def signer() -> Ed25519CheckpointSigner:
    seed = os.urandom(32)

    async def load() -> bytes:
        return seed

    return Ed25519CheckpointSigner(load)


def chain(n: int) -> list[SealedRow]:
    rows, head = [], GENESIS
    for seq in range(1, n + 1):
        text = canonical({"seq": seq, "amount": 100 * seq, "merchant_id": "mer_1"})
        head = link(head, seq, seq + 10, text)
        rows.append(SealedRow(seq, seq + 10, head, text))
    return rows


async def checkpoint(s: Ed25519CheckpointSigner, row: SealedRow) -> Checkpoint:
    signature = await s.sign(checkpoint_message("txlog", row.seq, row.stored_hash))
    return Checkpoint("txlog", row.seq, row.stored_hash, s.algorithm, await s.key_id(), signature)


async def test_an_export_verifies_against_its_own_checkpoints_whatever_was_sealed_since() -> None:
    s = signer()
    rows = chain(8)
    verifier = PublicKeyVerifier(await s.public_key_pem())
    exported = [await checkpoint(s, rows[3])]
    lines = list(export_lines("txlog", rows[:6], exported))
    back_rows, back_checkpoints = read_export(lines, "txlog")
    assert back_rows == rows[:6] and back_checkpoints == exported
    assert verify("txlog", back_rows, back_checkpoints, verifier.check).ok
    # Given a checkpoint beyond its end, the same file is cut short: that is tampering.
    later = await checkpoint(s, rows[7])
    cut = verify("txlog", back_rows, [*back_checkpoints, later], verifier.check)
    assert (cut.first_bad_seq, cut.reason) == (7, "checkpoint at 8 but the chain ends at 6")


async def test_signatures_name_a_foreign_key_and_a_forgery() -> None:
    s, other = signer(), signer()
    rows = chain(4)
    verifier = PublicKeyVerifier(await s.public_key_pem())
    foreign = await checkpoint(other, rows[3])
    verdict = verify("txlog", rows, [foreign], verifier.check)
    assert verdict.first_bad_seq == 1
    assert verdict.reason == (
        f"checkpoint at 4 is signed by key {await other.key_id()}, not the trusted "
        f"{verifier.key_id}"
    )
    good = await checkpoint(s, rows[3])
    forged = Checkpoint("txlog", 4, bytes(32), good.algorithm, good.key_id, good.signature)
    assert verifier.check(forged) == "checkpoint at 4 has a bad signature"


async def test_the_two_copies_are_reconciled() -> None:
    s = signer()
    rows = chain(12)
    cps = [await checkpoint(s, rows[i]) for i in (3, 7, 11)]
    merged, problem = reconcile_checkpoints("txlog", cps, cps, copied=12)
    assert merged == cps and problem is None
    # Not copied yet: fine. Copied and then deleted from storage: reported.
    assert reconcile_checkpoints("txlog", cps, cps[:2], copied=8)[1] is None
    assert reconcile_checkpoints("txlog", cps, cps[:2], copied=12)[1] == (
        12,
        "checkpoint at 12 is missing from object storage",
    )
    # Deleted from the database: still evidence, and reported.
    merged, problem = reconcile_checkpoints("txlog", cps[:1], cps, copied=12)
    assert merged == cps
    assert problem == (8, "checkpoint at 8 is in object storage, not in the database")
    other = Checkpoint("txlog", 8, cps[1].head, cps[1].algorithm, cps[1].key_id, b"x")
    assert reconcile_checkpoints("txlog", cps, [cps[0], other, cps[2]], copied=12)[1] == (
        8,
        "checkpoint at 8 differs between database and storage",
    )


def test_a_malformed_export_line_is_named() -> None:
    with pytest.raises(ValueError, match="line 2"):
        read_export(['{"chain": "audit", "seq": 1}', '{"chain": "txlog", "seq": "x"}'], "txlog")


def test_a_mirror_item_is_compared_attribute_by_attribute() -> None:
    (row,) = chain(1)
    item = MirrorItem.of(row)
    stored = dict(item.attributes())
    assert stored["merchant_id"] == "mer_1" and mirror_differences(item, stored) == []
    stored["hash"] = "00"
    stored.pop("merchant_id")
    assert mirror_differences(item, stored) == ["hash", "merchant_id"]
