"""The ISO 8583 simulator: `clearport simulate iso8583 --port P`, a process of its own.

An asyncio TCP server in front of the simulated processor (`processor_sim`). Each message on a
connection is handled in its own task, so answers go back in the order they are ready, not the
order they came (latency varies): the client must match them by STAN. 0100 authorizes, 0200
sells (processing code 000000) or refunds (200000), 0220 completes (captures), 0420 reverses
(voids), 0800 answers an echo test. Originals are found by DE48 `OR` (transform.py).

Faults, beside the processor's (latency, error rate, timeouts, silent): `malformed` answers
authorizations, sales, completions and refunds with a bad length header, a bitmap that does not
decode, or no DE39, after acting on them; reversals are always answered well, so what a client
reverses is reversed. A message that does not decode closes its connection. Nothing logged
carries a PAN: MTI, STAN, reference and response code only.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import iso8583
import structlog
from iso8583.specs import default_ascii

from clearport.connectors.domain import ResponseCode
from clearport.connectors.iso8583.framing import BadFrame, frame, read_frame
from clearport.connectors.iso8583.transform import (
    ANSWER_MTI,
    REFUND,
    Malformed,
    de48,
    parse_de48,
)
from clearport.connectors.processor_sim.processor import Answer, Faults, SimulatedProcessor
from clearport.connectors.processor_sim.records import Records
from clearport.connectors.processor_sim.settlement_file import SettlementFileOptions, keep_writing
from clearport.core.money import CURRENCY_OF_NUMERIC
from clearport.core.sensitive import SensitiveStr

log = structlog.get_logger("clearport.simulator.iso8583")


class Malformation(StrEnum):
    BAD_LENGTH = "bad_length"
    BAD_BITMAP = "bad_bitmap"
    NO_DE39 = "no_de39"


FAULTY_MTIS = frozenset({"0100", "0200", "0220"})


@dataclass(frozen=True, slots=True)
class IsoHostOptions:
    database_url: str
    schema: str = "simulator_iso8583"
    name: str = "iso8583-sim"
    faults: Faults = field(default_factory=Faults)
    malformed: Malformation | None = None
    settlement_file: SettlementFileOptions | None = None


class _BadRequest(Exception):
    pass


def _amount(message: dict[str, Any]) -> int:
    value = message.get("4")
    if not isinstance(value, str) or not value.isdigit():
        raise _BadRequest("DE4")
    return int(value)


def _currency(message: dict[str, Any]) -> str:
    value = CURRENCY_OF_NUMERIC.get(str(message.get("49")))
    if value is None:
        raise _BadRequest("DE49")
    return value


def _card(message: dict[str, Any]) -> SensitiveStr:
    value = message.get("2")
    if not isinstance(value, str) or not value.isdigit():
        raise _BadRequest("DE2")
    return SensitiveStr(value)


class IsoHost:
    def __init__(self, processor: SimulatedProcessor, options: IsoHostOptions) -> None:
        self.processor = processor
        self.options = options
        self._tasks: set[asyncio.Task[None]] = set()

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lock = asyncio.Lock()
        try:
            while True:
                raw = await read_frame(reader)
                try:
                    message, _ = iso8583.decode(raw, default_ascii)
                except iso8583.DecodeError:
                    log.warning("sim_iso_undecodable")
                    return
                task = asyncio.create_task(self._answer(message, writer, lock))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except (asyncio.IncompleteReadError, BadFrame, ConnectionError):
            return
        finally:
            writer.close()

    async def _act(self, message: dict[str, Any], reference: str, original: str | None) -> Answer:
        mti = message["t"]
        details = {
            "mti": mti,
            "stan": str(message.get("11", "")),
            "terminal": str(message.get("41", "")),
            "rrn": str(message.get("37", "")),
        }
        network_ref = details["rrn"] or None
        p = self.processor
        if mti in ("0100", "0200") and message.get("3") != REFUND:
            return await p.authorize(
                reference,
                _amount(message),
                _currency(message),
                _card(message),
                capture=mti == "0200",
                network_ref=network_ref,
                details=details,
            )
        if original is None:
            raise _BadRequest("DE48 OR")
        if mti == "0200":
            return await p.refund(
                reference,
                original,
                _amount(message),
                _currency(message),
                network_ref=network_ref,
                details=details,
            )
        if mti == "0220":
            return await p.capture(
                reference,
                original,
                _amount(message),
                _currency(message),
                network_ref=network_ref,
                details=details,
            )
        if mti == "0420":
            amount = _amount(message) if "4" in message else None
            currency = _currency(message) if "49" in message else None
            return await p.reverse(
                reference, original, amount, currency, network_ref=network_ref, details=details
            )
        raise _BadRequest("MTI")

    async def _answer(
        self, message: dict[str, Any], writer: asyncio.StreamWriter, lock: asyncio.Lock
    ) -> None:
        if self.options.faults.silent:
            return
        mti = str(message.get("t"))
        reply: dict[str, Any] = {"t": ANSWER_MTI.get(mti, "0810")}
        for echoed in ("11", "37", "41", "4", "49"):
            if echoed in message:
                reply[echoed] = message[echoed]
        if mti == "0800":
            reply["39"] = str(ResponseCode.APPROVED)
            await self._send(reply, writer, lock, malformed=None)
            return
        try:
            items = parse_de48(str(message.get("48", "")))
            reference = items.get("RF")
            if not reference:
                raise _BadRequest("DE48 RF")
            done = await self._act(message, reference, items.get("OR"))
        except (_BadRequest, Malformed) as exc:
            log.warning("sim_iso_bad_request", mti=mti, stan=message.get("11"), field=str(exc))
            reply["39"] = str(ResponseCode.INVALID_TRANSACTION)
            await self._send(reply, writer, lock, malformed=None)
            return
        log.info(
            "sim_answer",
            mti=mti,
            stan=message.get("11"),
            reference=reference,
            code=done.code,
            sent=done.send,
        )
        if not done.send:
            return
        reply["39"] = done.code
        if done.record.approval_code and done.code == str(ResponseCode.APPROVED):
            reply["38"] = done.record.approval_code
        reply["48"] = de48(RF=reference)
        malformed = self.options.malformed if mti in FAULTY_MTIS else None
        await self._send(reply, writer, lock, malformed=malformed)

    async def _send(
        self,
        reply: dict[str, Any],
        writer: asyncio.StreamWriter,
        lock: asyncio.Lock,
        *,
        malformed: Malformation | None,
    ) -> None:
        if malformed is Malformation.NO_DE39:
            reply.pop("39", None)
        raw, _ = iso8583.encode(reply, default_ascii)
        payload = bytes(raw)
        if malformed is Malformation.BAD_BITMAP:
            payload = payload[:4] + b"ZZZZZZZZZZZZZZZZ" + payload[20:]
        data = frame(payload)
        if malformed is Malformation.BAD_LENGTH:
            data = b"\xff\xff" + payload
        async with lock:
            with contextlib.suppress(ConnectionError, OSError):
                writer.write(data)
                await writer.drain()


async def _serve(options: IsoHostOptions, host: str, port: int) -> None:
    records = Records(options.database_url, options.schema)
    await records.open()
    iso_host = IsoHost(SimulatedProcessor(records, options.faults, host=options.name), options)
    server = await asyncio.start_server(iso_host.connection, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("sim_iso_listening", host=host, port=port, name=options.name)
    writer = (
        None
        if options.settlement_file is None
        else asyncio.create_task(keep_writing(records, options.name, options.settlement_file, stop))
    )
    try:
        async with server:
            await stop.wait()
    finally:
        stop.set()
        if writer is not None:
            await writer
        await records.close()


def serve(options: IsoHostOptions, host: str, port: int) -> None:
    """Run the simulator until it is stopped (SIGINT, SIGTERM)."""
    import uvloop

    uvloop.run(_serve(options, host, port))
