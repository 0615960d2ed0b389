"""The HTTP acquirer's simulator: `clearport simulate http --port P`, a process of its own.

A Starlette app in front of the simulated processor (`processor_sim`), speaking the API in
`transform.py`. It checks the bearer key when given one, validates every body (a malformed one
is a 400 that quotes nothing), keeps its own records, and shows the configured faults: latency,
an error rate, timeouts (it acts and never answers), or a silent host that answers nothing.
It logs one line per request without bodies: never a card number.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from clearport.connectors.domain import ConnectorStatus, meaning, parse_response_code
from clearport.connectors.http_acquirer.client import HttpAcquirerConnector
from clearport.connectors.processor_sim.processor import (
    Answer,
    Faults,
    SimulatedProcessor,
)
from clearport.connectors.processor_sim.records import Record, Records
from clearport.connectors.processor_sim.settlement_file import SettlementFileOptions, keep_writing
from clearport.core.money import CURRENCY_NUMERIC
from clearport.core.sensitive import SensitiveStr

log = structlog.get_logger("clearport.simulator.http")

HANG_S = 600.0  # a request the host does not answer is held this long (the client gave up)
MAX_BODY_BYTES = 16_384


@dataclass(frozen=True, slots=True)
class HttpHostOptions:
    database_url: str
    schema: str = "simulator_http"
    name: str = "http-sim"
    api_key: str | None = None
    faults: Faults = field(default_factory=Faults)
    settlement_file: SettlementFileOptions | None = None


class BadRequest(Exception):
    pass


def _result(code: str) -> str:
    """`approved`, `declined` or `error`, as the response code means it (`domain.meaning`)."""
    parsed = parse_response_code(code)
    status = ConnectorStatus.ERROR if parsed is None else meaning(parsed)[0]
    if status is ConnectorStatus.APPROVED:
        return "approved"
    return "error" if status is ConnectorStatus.ERROR else "declined"


def shown(record: Record, code: str | None = None) -> dict[str, Any]:
    code = code or record.response_code
    return {
        "reference": record.reference,
        "kind": record.kind,
        "result": _result(code),
        "reason_code": code,
        "approval_code": record.approval_code if code == "00" else None,
        "network_ref": record.network_ref,
        "state": record.state,
    }


def _reference(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not value.isascii():
        raise BadRequest(key)
    return value


def _amount(body: dict[str, Any]) -> int:
    value = body.get("amount")
    if type(value) is not int or not 0 < value <= 10**12:
        raise BadRequest("amount")
    return value


def _currency(body: dict[str, Any]) -> str:
    value = body.get("currency")
    if not isinstance(value, str) or value.lower() not in CURRENCY_NUMERIC:
        raise BadRequest("currency")
    return value.lower()


def _card(body: dict[str, Any]) -> SensitiveStr:
    card = body.get("card")
    if not isinstance(card, dict):
        raise BadRequest("card")
    number = card.get("number")
    if not isinstance(number, str) or not number.isdigit() or not 12 <= len(number) <= 19:
        raise BadRequest("card.number")
    for key in ("exp_month", "exp_year"):
        if type(card.get(key)) is not int:
            raise BadRequest(f"card.{key}")
    return SensitiveStr(number)


def network_ref_for(reference: str) -> str:
    return "HTA" + reference[-12:].upper()


def build_app(processor: SimulatedProcessor, options: HttpHostOptions) -> Starlette:
    async def answer(
        request: Request, act: Callable[[dict[str, Any]], Awaitable[Answer]]
    ) -> Response:
        if options.faults.silent:
            await asyncio.sleep(HANG_S)
        if options.api_key is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {options.api_key}".encode()):
                return JSONResponse({"error": "unauthorized"}, status_code=401)
        raw = await request.body()
        try:
            if len(raw) > MAX_BODY_BYTES:
                raise BadRequest("body")
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise BadRequest("body")
            done = await act(body)
        except (BadRequest, ValueError) as exc:
            log.info("sim_bad_request", path=request.url.path, field=str(exc)[:40])
            return JSONResponse({"error": "bad_request"}, status_code=400)
        log.info(
            "sim_answer",
            path=request.url.path,
            reference=done.record.reference,
            code=done.code,
            sent=done.send,
        )
        if not done.send:
            await asyncio.sleep(HANG_S)
        return JSONResponse(shown(done.record))

    async def authorizations(request: Request) -> Response:
        async def act(body: dict[str, Any]) -> Answer:
            capture = body.get("capture", False)
            if not isinstance(capture, bool):
                raise BadRequest("capture")
            reference = _reference(body, "reference")
            return await processor.authorize(
                reference,
                _amount(body),
                _currency(body),
                _card(body),
                capture=capture,
                network_ref=network_ref_for(reference),
            )

        return await answer(request, act)

    async def captures(request: Request) -> Response:
        async def act(body: dict[str, Any]) -> Answer:
            reference = _reference(body, "reference")
            return await processor.capture(
                reference,
                _reference(body, "authorization"),
                _amount(body),
                _currency(body),
                network_ref=network_ref_for(reference),
            )

        return await answer(request, act)

    async def refunds(request: Request) -> Response:
        async def act(body: dict[str, Any]) -> Answer:
            reference = _reference(body, "reference")
            return await processor.refund(
                reference,
                _reference(body, "authorization"),
                _amount(body),
                _currency(body),
                network_ref=network_ref_for(reference),
            )

        return await answer(request, act)

    async def voids(request: Request) -> Response:
        async def act(body: dict[str, Any]) -> Answer:
            reference = _reference(body, "reference")
            return await processor.void(
                reference, _reference(body, "authorization"), network_ref=network_ref_for(reference)
            )

        return await answer(request, act)

    async def reversals(request: Request) -> Response:
        async def act(body: dict[str, Any]) -> Answer:
            reference = _reference(body, "reference")
            return await processor.reverse(
                reference,
                _reference(body, "original"),
                _amount(body),
                _currency(body),
                network_ref=network_ref_for(reference),
            )

        return await answer(request, act)

    async def transaction(request: Request) -> Response:
        if options.faults.silent:
            await asyncio.sleep(HANG_S)
        reference = request.path_params["reference"]
        if len(reference) > 64:
            return JSONResponse({"error": "bad_request"}, status_code=400)
        record = await processor.inquire(reference)
        if record is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse(shown(record))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "host": options.name})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await processor.records.open()
        stop = asyncio.Event()
        writer = (
            None
            if options.settlement_file is None
            else asyncio.create_task(
                keep_writing(processor.records, options.name, options.settlement_file, stop)
            )
        )
        try:
            yield
        finally:
            stop.set()
            if writer is not None:
                await writer
            await processor.records.close()

    return Starlette(
        routes=[
            Route("/v1/authorizations", authorizations, methods=["POST"]),
            Route("/v1/captures", captures, methods=["POST"]),
            Route("/v1/voids", voids, methods=["POST"]),
            Route("/v1/refunds", refunds, methods=["POST"]),
            Route("/v1/reversals", reversals, methods=["POST"]),
            Route("/v1/transactions/{reference}", transaction, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def serve(options: HttpHostOptions, host: str, port: int) -> None:
    """Run the simulator until it is stopped (SIGINT, SIGTERM)."""
    import uvicorn

    processor = SimulatedProcessor(
        Records(options.database_url, options.schema), options.faults, host=options.name
    )
    uvicorn.run(
        build_app(processor, options),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=1,
    )


class InProcessHosts:
    """Simulator hosts served in this process over httpx's ASGI transport, one per name, all in
    front of one set of records: for the money simulation, where one seed must fix every
    answer, so no other process may schedule anything. The client is the real connector
    (`HttpAcquirerConnector`) and the hosts the real app; only the socket is missing. The
    records outlive the clients: a simulated crash builds new clients on the same hosts."""

    def __init__(self, database_url: str, schema: str, names: tuple[str, ...]) -> None:
        self.records = Records(database_url, schema)
        self._apps = {
            name: build_app(
                SimulatedProcessor(self.records, Faults(), host=name),
                HttpHostOptions(database_url, schema, name),
            )
            for name in names
        }

    async def open(self) -> None:
        await self.records.open()

    async def close(self) -> None:
        await self.records.close()

    def connector(self, name: str, *, timeout_s: float) -> HttpAcquirerConnector:
        import httpx

        return HttpAcquirerConnector(
            name,
            f"http://{name}.invalid",
            api_key=None,
            timeout_s=timeout_s,
            connect_timeout_s=timeout_s,
            max_connections=32,
            transport=httpx.ASGITransport(app=self._apps[name]),
        )
