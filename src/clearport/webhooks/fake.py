"""A resolver answering from a table (no DNS), for tests of the SSRF guard and of delivery."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from clearport.webhooks.addresses import IPAddress


class FakeResolver:
    """`names` maps a host to the addresses it resolves to; any other name does not resolve."""

    def __init__(self, names: Mapping[str, Sequence[str]] | None = None) -> None:
        self.names: dict[str, list[IPAddress]] = {
            host: [ipaddress.ip_address(a) for a in addresses]
            for host, addresses in (names or {}).items()
        }
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int) -> Sequence[IPAddress]:
        self.asked.append(host)
        return list(self.names.get(host, []))
