"""The server secret: keys API-key hashes and idempotent request hashes."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

_SECRET_BYTES = 32


def load_or_create_server_secret(configured: str | None, data_dir: Path) -> bytes:
    """The configured secret, else one generated once into `data_dir/server_secret` (0600).

    Losing this file invalidates every API key, so production should set
    CLEARPORT_SECRET_KEY from its secret manager instead.
    """
    if configured:
        return configured.encode()
    path = data_dir / "server_secret"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip().encode()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(_SECRET_BYTES))
    return path.read_text().strip().encode()
