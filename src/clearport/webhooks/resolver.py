"""Name resolution for the SSRF guard: the system resolver (getaddrinfo), bounded in time."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence

from clearport.webhooks.addresses import IPAddress


class SystemResolver:
    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s

    async def resolve(self, host: str, port: int) -> Sequence[IPAddress]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout_s):
                infos = await loop.getaddrinfo(
                    host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
        except (OSError, TimeoutError, UnicodeError):
            return []
        found: list[IPAddress] = []
        for family, *_, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                # An IPv6 sockaddr may carry a zone ("fe80::1%eth0"): the address is before it.
                address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
                if address not in found:
                    found.append(address)
        return found
