"""The export file: JSON lines, one per sealed row and one per checkpoint, so that it verifies
offline with nothing but the public key (`clearport txlog verify --file F --public-key K`).

    {"chain": "txlog", "seq": 1, "source_seq": 7, "hash": "<hex>", "row": "<canonical row>"}
    {"chain": "txlog", "checkpoint": {"seq": 4, "head": "<hex>", "algorithm": "ed25519",
                                      "key_id": "sha256:…", "signature": "<hex>", ...}}

Files written before checkpoints were exported hold rows only; they still verify (against no
checkpoint: the hashes alone).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from clearport.txlog.domain import Checkpoint, SealedRow


def export_lines(
    chain: str, rows: Iterable[SealedRow], checkpoints: Iterable[Checkpoint]
) -> Iterator[str]:
    for row in rows:
        yield json.dumps(
            {
                "chain": chain,
                "seq": row.seq,
                "source_seq": row.source_seq,
                "hash": row.stored_hash.hex(),
                "row": row.row_text,
            }
        )
    for checkpoint in checkpoints:
        yield json.dumps({"chain": chain, "checkpoint": checkpoint.to_json()})


def read_export(lines: Iterable[str], chain: str) -> tuple[list[SealedRow], list[Checkpoint]]:
    """One chain's rows and checkpoints; ValueError naming the line when one is malformed."""
    rows: list[SealedRow] = []
    checkpoints: list[Checkpoint] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if item["chain"] != chain:
                continue
            if "checkpoint" in item:
                checkpoints.append(Checkpoint.from_json(item["checkpoint"]))
            else:
                rows.append(
                    SealedRow(
                        int(item["seq"]),
                        int(item["source_seq"]),
                        bytes.fromhex(item["hash"]),
                        item["row"],
                    )
                )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"line {number} of the export is malformed") from exc
    rows.sort(key=lambda r: r.seq)
    return rows, checkpoints
