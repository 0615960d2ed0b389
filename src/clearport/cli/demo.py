"""The demo merchant and keys of `clearport run`, kept in the data directory and shown again;
and the two simulators it starts, registered as connectors.

`demo.json` (0600, like `server_secret`) holds the admin operator key, the demo merchant and its
secret key. Each start reuses what still works in the database it runs against (the keys exist
and are usable, the merchant exists and is active) and creates only what does not, so repeated
starts leave one "Demo Coffee" and the same keys.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearport.access.domain import SYSTEM_CLI, Role
from clearport.bins.service import SAMPLE_FILE
from clearport.cli.context import CLI_ORIGIN
from clearport.cli.simulate import RunningSimulator, free_port
from clearport.connectors.service import ConnectorPatch, ConnectorView, NewConnector, masked
from clearport.core.errors import InvalidRequest, NotFound
from clearport.core.pagination import MAX_PAGE_LIMIT, PageRequest
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


def _write_json(path: Path, content: dict[str, Any]) -> None:
    """Atomically, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(content, handle, indent=1)
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

    # A first look shows cards' funding and issuer country: the sample BIN table, if none.
    if await container.bins.count() == 0:
        await container.bins.import_text(SAMPLE_FILE.read_text(encoding="utf-8"))

    demo = Demo(operator_key, merchant.id, merchant_key)
    reused = stored == asdict(demo)
    if not reused:
        _write_json(path, asdict(demo))
    return demo, reused


# The simulators' ports and the HTTP one's key, kept so a restart changes no connector.
SIMULATORS_FILE_NAME = "demo-simulators.json"
SIMULATOR_KINDS = ("iso8583", "http")  # the order payments try them in


@dataclass(frozen=True, slots=True)
class SimulatorPlan:
    api_key: str
    ports: dict[str, int]


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def simulator_plan(data_dir: Path, host: str = "127.0.0.1") -> SimulatorPlan:
    """The ports and key of the last start where they are still usable, new ones otherwise."""
    path = data_dir / SIMULATORS_FILE_NAME
    try:
        stored = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        stored = {}
    stored = stored if isinstance(stored, dict) else {}
    api_key = stored.get("api_key")
    if not isinstance(api_key, str) or not api_key.startswith("sim_"):
        api_key = "sim_" + secrets.token_hex(16)
    ports: dict[str, int] = {}
    for kind in SIMULATOR_KINDS:
        port = stored.get(f"{kind}_port")
        ports[kind] = port if isinstance(port, int) and _port_free(host, port) else free_port(host)
    plan = SimulatorPlan(api_key, ports)
    wanted = {"api_key": api_key, **{f"{k}_port": p for k, p in ports.items()}}
    if wanted != stored:
        _write_json(path, wanted)
    return plan


async def ensure_demo_connectors(
    container: Container, simulators: Sequence[RunningSimulator], api_key: str
) -> list[str]:
    """Register the simulators `clearport run` started (or point those an earlier start
    registered at today's ports and key); their names, in the order payments try them."""
    connectors = container.connectors
    existing: dict[str, ConnectorView] = {}
    page = PageRequest(limit=MAX_PAGE_LIMIT)
    while True:
        listed = await connectors.list(SYSTEM_CLI, page)
        existing.update({view.record.name: view for view in listed.data})
        if not listed.has_more:
            break
        page = PageRequest(limit=MAX_PAGE_LIMIT, starting_after=listed.data[-1].record.id)
    names = []
    for simulator in simulators:
        kind, settings = _demo_settings(simulator, api_key)
        view = existing.get(simulator.name)
        if view is None:
            await connectors.create(
                SYSTEM_CLI, CLI_ORIGIN, NewConnector(simulator.name, kind, settings)
            )
        elif not _as_wanted(view, settings):
            await connectors.update(
                SYSTEM_CLI,
                CLI_ORIGIN,
                view.record.id,
                ConnectorPatch(settings=settings, status="enabled"),
            )
        names.append(simulator.name)
    return names


def _as_wanted(view: ConnectorView, settings: dict[str, Any]) -> bool:
    shown = view.shown_settings
    api_key = settings.get("api_key")
    same = all(
        shown.get(k) == (masked(v) if k == "api_key" and api_key else v)
        for k, v in settings.items()
    )
    return same and view.record.enabled


def _demo_settings(simulator: RunningSimulator, api_key: str) -> tuple[str, dict[str, Any]]:
    if simulator.kind == "http":
        url = f"http://127.0.0.1:{simulator.port}"
        return "http_acquirer", {"url": url, "api_key": api_key, "timeout_ms": 5_000}
    return "iso8583", {"host": "127.0.0.1", "port": simulator.port, "timeout_ms": 5_000}
