"""The ISO 8583 connector's settings (`type: "iso8583"`)."""

from __future__ import annotations

from pydantic import Field

from clearport.connectors.iso8583.identifiers import MAX_TERMINALS
from clearport.connectors.settings import NetworkSettings

HOST_PATTERN = r"^[A-Za-z0-9.\-:]{1,253}$"


class Iso8583Settings(NetworkSettings):
    host: str = Field(pattern=HOST_PATTERN, description="The host's name or address.")
    port: int = Field(ge=1, le=65_535)
    terminals: int = Field(
        default=16,
        ge=1,
        le=MAX_TERMINALS,
        description="Terminal ids (DE41) in the pool; the STAN moves to the next on a wrap.",
    )
    acquirer_id: str = Field(
        default="000001", pattern=r"^[0-9]{1,11}$", description="DE32, acquiring institution."
    )
    card_acceptor_id: str = Field(
        default="CLEARPORT", pattern=r"^[A-Za-z0-9 ]{1,15}$", description="DE42."
    )
    mcc: str = Field(default="5999", pattern=r"^[0-9]{4}$", description="DE18, merchant type.")
    max_in_flight: int = Field(
        default=1_000, ge=1, le=100_000, description="Requests in flight on the connection."
    )
