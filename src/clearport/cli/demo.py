"""The demo merchant and keys of `clearport run`, kept in the data directory and shown again.

`demo.json` (0600, like `server_secret`) holds the admin operator key, the demo merchant and its
secret key. Each start reuses what still works in the database it runs against (the keys exist
and are usable, the merchant exists and is active) and creates only what does not, so repeated
starts leave one "Demo Coffee" and the same keys.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clearport.access.domain import SYSTEM_CLI, Role
from clearport.cli.context import CLI_ORIGIN
from clearport.core.errors import InvalidRequest, NotFound
from clearport.merchants.domain import MerchantStatus
from clearport.merchants.service import NewMerchant

if TYPE_CHECKING:
    from clearport.wiring import Container

FILE_NAME = "demo.json"


@dataclass(frozen=True, slots=True)
class Demo:
    operator_key: str
    merchant: str
    merchant_key: str


def demo_file(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def _read(path: Path) -> dict[str, str]:
    try:
        stored = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    if not isinstance(stored, dict):
        return {}
    return {k: v for k, v in stored.items() if isinstance(k, str) and isinstance(v, str)}


def _write(path: Path, demo: Demo) -> None:
    """Atomically, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(demo), handle, indent=1)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


async def ensure_demo(container: Container, path: Path) -> tuple[Demo, bool]:
    """The demo set from `path` where it still works, the rest created; True if nothing had
    to be created."""
    merchants = container.merchants
    stored = _read(path)

    operator_key = stored.get("operator_key", "")
    operator = await merchants.usable_key(SYSTEM_CLI, operator_key) if operator_key else None
    if operator is None or operator.role != Role.ADMIN:
        issued = await merchants.create_operator_key(SYSTEM_CLI, CLI_ORIGIN, Role.ADMIN)
        operator_key = issued.secret

    merchant_id = stored.get("merchant", "")
    try:
        merchant = await merchants.get(SYSTEM_CLI, merchant_id) if merchant_id else None
    except (NotFound, InvalidRequest):  # gone, or not a merchant id: make a new one
        merchant = None
    if merchant is None or merchant.status is not MerchantStatus.ACTIVE:
        merchant = await merchants.create(
            SYSTEM_CLI,
            CLI_ORIGIN,
            # Paid out the day it settles, so the walkthrough shows a payout file.
            NewMerchant(
                name="Demo Coffee",
                country="US",
                mcc="5814",
                default_currency="usd",
                payout_delay_days=0,
            ),
        )

    merchant_key = stored.get("merchant_key", "")
    key = await merchants.usable_key(SYSTEM_CLI, merchant_key) if merchant_key else None
    if key is None or key.merchant_id != merchant.id:
        merchant_key = (
            await merchants.create_key(SYSTEM_CLI, CLI_ORIGIN, merchant.id, None)
        ).secret

    demo = Demo(operator_key, merchant.id, merchant_key)
    reused = stored == asdict(demo)
    if not reused:
        _write(path, demo)
    return demo, reused
