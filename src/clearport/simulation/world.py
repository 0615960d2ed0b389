"""The world one seed runs in: its database, the simulated acquirers, the fake clock, and the
Clearport instance serving it, which a simulated crash throws away for a fresh one.

A crash is what a killed process leaves: the task is cancelled at whatever await it had reached,
its connections are dropped without a goodbye (`pool.terminate()`: PostgreSQL rolls back what
was open), and everything it held in memory (caches, breakers, connector clients) goes with the
old container. The processor's records and the database remain, as they would.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx

from clearport.access.domain import SYSTEM_CLI, Origin, Role
from clearport.config import Settings
from clearport.connectors.faults import FaultyConnector
from clearport.connectors.ports import Connector
from clearport.http.app import create_app
from clearport.merchants.service import NewMerchant
from clearport.simulation.database import PROCESSOR_SCHEMA
from clearport.wiring import Container, build_container, in_process_hosts

ACQUIRERS = ("acq-a", "acq-b")
# How long a call may take while the schedule runs (a TIME_OUT fault costs this much), and once
# the run heals: a healthy processor on a loaded machine answers well within it, so what is
# left pending then is Clearport's, not the machine's.
STEP_TIMEOUT_S = 0.25
CALM_TIMEOUT_S = 5.0
# The second acquirer answers no status inquiry (as ISO 8583 here): its lost answers are
# failed and reversed, the first's are asked about.
NO_INQUIRY = frozenset({"acq-b"})


class Hosts(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def connector(self, name: str, *, timeout_s: float) -> Connector: ...


class SimClock:
    """The run's clock: the wall clock when the run began, moved on only by the schedule. It
    never runs behind PostgreSQL's own clock, which stamps some rows (ledger transfers)."""

    def __init__(self) -> None:
        self._start = datetime.now(UTC)
        self._real = asyncio.get_running_loop().time()
        self.offset = timedelta(0)

    def now(self) -> datetime:
        elapsed = asyncio.get_running_loop().time() - self._real
        return self._start + timedelta(seconds=elapsed) + self.offset

    def advance(self, seconds: int) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class MerchantKeys:
    id: str
    currency: str
    secret: str


@dataclass
class Instance:
    """One Clearport process: its container, its app, its connector clients."""

    container: Container
    client: httpx.AsyncClient
    faulty: dict[str, FaultyConnector]


def simulation_settings(base: Settings, data_dir: Path) -> Settings:
    """Production's settings with the simulation's pace: short timeouts and waits, so faults
    resolve in milliseconds of real time and the fake clock decides the rest; two settlement
    partitions for three merchants (one partition holds two)."""
    settlement = base.settlement.model_copy(update={"partitions": 2})
    return base.model_copy(
        update={
            "settlement": settlement,
            "data_dir": data_dir,
            "connector_timeout_s": STEP_TIMEOUT_S,
            "janitor_grace_s": 1,
            "idempotency_lock_timeout_s": 1,
            "breaker_cooldown_s": 0.05,
            "authorization_window_s": 2 * 86_400,
            "rate_limit_requests": 1_000_000,
            "db_pool_min": 1,
            "db_pool_max": 8,
        }
    )


@dataclass
class World:
    settings: Settings
    url: str
    clock: SimClock
    hosts: Hosts
    instance: Instance | None = None
    # Every connector client ever built: a late answer may still be on its way from a dead one.
    clients: list[FaultyConnector] = field(default_factory=list)
    admin: str = ""
    merchants: list[MerchantKeys] = field(default_factory=list)

    @staticmethod
    async def open(settings: Settings, url: str) -> World:
        hosts = in_process_hosts(url, PROCESSOR_SCHEMA, ACQUIRERS)
        await hosts.open()
        world = World(settings, url, SimClock(), hosts)
        await world.start_instance()
        return world

    @property
    def current(self) -> Instance:
        if self.instance is None:
            raise RuntimeError("no Clearport instance is running")
        return self.instance

    @property
    def container(self) -> Container:
        return self.current.container

    async def start_instance(self) -> None:
        faulty: dict[str, FaultyConnector] = {}
        for name in ACQUIRERS:
            inner = self.hosts.connector(name, timeout_s=self.settings.connector_timeout_s)
            wrapped = FaultyConnector(inner, late_s=0.02)
            wrapped.inquires = name not in NO_INQUIRY
            faulty[name] = wrapped
            self.clients.append(wrapped)
        container = build_container(
            self.settings, self.url, clock=self.clock, connectors=dict(faulty)
        )
        await container.start(listen=False)
        transport = httpx.ASGITransport(app=create_app(container), raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://clearport.sim")
        self.instance = Instance(container, client, faulty)

    async def crash(self) -> None:
        """The process dies: connections dropped, memory gone; a fresh one starts."""
        old = self.current
        self.instance = None
        # Every pool: a settlement partition's connection (its own pool) keeps a temporary
        # table that a live connection would leave for the next seed's reset to trip on.
        old.container.terminate()
        with contextlib.suppress(Exception):
            await old.container.settlement_jobs.close()
        await old.client.aclose()
        await self.start_instance()

    async def calm(self) -> None:
        """The faults are over: a clean restart with patient connector calls (and fresh
        breakers), as operators would leave a recovered processor to the janitor."""
        old = self.current
        self.instance = None
        await old.client.aclose()
        await old.container.stop()
        self.settings = self.settings.model_copy(update={"connector_timeout_s": CALM_TIMEOUT_S})
        await self.start_instance()

    async def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.close()
        if self.instance is not None:
            await self.instance.client.aclose()
            await self.instance.container.stop()
            self.instance = None
        await self.hosts.close()

    async def setup(self) -> None:
        """An operator key and three merchants (two in USD, one in EUR) with bank accounts."""
        c = self.container
        self.admin = (
            await c.merchants.create_operator_key(SYSTEM_CLI, Origin(), Role.ADMIN)
        ).secret
        for index, (currency, country) in enumerate((("usd", "US"), ("usd", "US"), ("eur", "DE"))):
            merchant = await c.merchants.create(
                SYSTEM_CLI,
                Origin(),
                NewMerchant(
                    name=f"Simulated {index}",
                    country=country,
                    mcc="5999",
                    default_currency=currency,
                ),
            )
            key = await c.merchants.create_key(SYSTEM_CLI, Origin(), merchant.id, None)
            self.merchants.append(MerchantKeys(merchant.id, currency, key.secret))
            account: dict[str, Any] = (
                {
                    "country": "US",
                    "currency": "usd",
                    "routing_number": "110000000",
                    "account_number": f"00012345678{index}",
                }
                if currency == "usd"
                else {
                    "country": "DE",
                    "currency": "eur",
                    "iban": "DE89370400440532013000",
                    "bic": "COBADEFFXXX",
                }
            )
            answer = await self.call(
                "PUT",
                f"/v1/merchants/{merchant.id}/bank_account",
                self.admin,
                {"account_holder": f"Simulated {index}", **account},
            )
            if answer.status_code != 200:
                raise RuntimeError(f"bank account refused: {answer.text}")

    async def call(
        self,
        method: str,
        path: str,
        key: str,
        body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return await self.current.client.request(method, path, json=body, headers=headers)
