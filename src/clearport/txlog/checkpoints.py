"""Signed chain checkpoints in an append-only JSON-lines file under the data directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

from clearport.txlog.domain import Checkpoint


class FileCheckpointStore:
    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def _path(self, chain: str) -> Path:
        return self._directory / f"{chain}.checkpoints.jsonl"

    def append(self, checkpoint: Checkpoint) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {
                "chain": checkpoint.chain,
                "seq": checkpoint.seq,
                "head": checkpoint.head.hex(),
                "mac": checkpoint.mac,
            }
        )
        fd = os.open(self._path(checkpoint.chain), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, chain: str) -> list[Checkpoint]:
        path = self._path(chain)
        if not path.exists():
            return []
        found: list[Checkpoint] = []
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            found.append(
                Checkpoint(
                    item["chain"], int(item["seq"]), bytes.fromhex(item["head"]), item["mac"]
                )
            )
        return found
