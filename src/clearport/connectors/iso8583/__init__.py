"""`iso8583`: ISO 8583:1987 over TCP with a 2-byte length header (pyiso8583, `default_ascii`):
the multiplexed client (client.py), the messages (transform.py), DE11/DE37/DE41 (identifiers.py),
framing, settings, and the simulator host (host.py, `clearport simulate iso8583`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clearport.connectors.iso8583.client import Iso8583Connector
from clearport.connectors.iso8583.identifiers import RrnSequence, StanAllocator, terminal_ids
from clearport.connectors.iso8583.settings import Iso8583Settings
from clearport.connectors.iso8583.transform import Merchant
from clearport.connectors.ports import BuildContext, CheckedSettings
from clearport.connectors.settings import check, schema_of


class Iso8583Type:
    name = "iso8583"

    def __init__(self) -> None:
        # One sequence per process (station), shared by its ISO 8583 connectors: an RRN is
        # unique per day whichever host it goes to.
        self._rrns: dict[int, RrnSequence] = {}

    def settings_schema(self) -> dict[str, Any]:
        return schema_of(Iso8583Settings)

    def check_settings(self, settings: Mapping[str, Any]) -> CheckedSettings:
        return check(Iso8583Settings, settings)

    def build(
        self,
        name: str,
        settings: Mapping[str, Any],
        secret: Mapping[str, str],
        context: BuildContext,
    ) -> Iso8583Connector:
        parsed = Iso8583Settings.model_validate(dict(settings))
        rrns = self._rrns.setdefault(context.station, RrnSequence(context.station))
        return Iso8583Connector(
            name,
            parsed.host,
            parsed.port,
            timeout_s=parsed.timeout_ms / 1000,
            connect_timeout_s=parsed.connect_timeout_ms / 1000,
            stans=StanAllocator(terminal_ids(context.station, parsed.terminals)),
            rrns=rrns,
            merchant=Merchant(parsed.acquirer_id, parsed.card_acceptor_id, parsed.mcc),
            max_in_flight=parsed.max_in_flight,
        )
