"""The SSRF guard: on create, on update and before every delivery, the URL is parsed by the rules
of `addresses`, its host resolved once (a literal is not resolved), every address it resolves
to checked, and the first one pinned: the delivery connects to that address and no other, so a
name that answers differently the second time (DNS rebinding) cannot steer it elsewhere.

The development switch (`CLEARPORT_WEBHOOKS_ALLOW_LOOPBACK=1`) allows http and loopback, and is
refused (treated as off) while live keys exist or the environment is live.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from clearport.core.errors import InvalidRequest
from clearport.core.uow import UnitOfWork
from clearport.webhooks.addresses import (
    URL_NOT_ALLOWED,
    IPAddress,
    WebhookUrl,
    check_address,
    parse_webhook_url,
)
from clearport.webhooks.ports import LiveKeys, Resolver

log = structlog.get_logger("clearport.webhooks")

URL_UNRESOLVABLE = "url_unresolvable"


@dataclass(frozen=True, slots=True)
class Pinned:
    """A URL that passed the guard, and the one address a delivery may connect to."""

    url: WebhookUrl
    address: IPAddress


class LoopbackSwitch:
    """Whether loopback (and http) is allowed now: the setting, unless live keys exist. The
    answer is kept `recheck_s` seconds, so deliveries do not ask the database each time."""

    def __init__(
        self,
        enabled: bool,
        uow: UnitOfWork,
        live_keys: LiveKeys,
        *,
        live_environment: bool,
        recheck_s: float = 30.0,
    ) -> None:
        self._enabled = enabled
        self._uow = uow
        self._live_keys = live_keys
        self._live_environment = live_environment
        self._recheck_s = recheck_s
        self._answer: tuple[float, bool] | None = None
        self._warned = False

    async def allowed(self) -> bool:
        if not self._enabled:
            return False
        if self._live_environment:
            self._refused("live environment")
            return False
        now = time.monotonic()
        if self._answer is not None and now - self._answer[0] < self._recheck_s:
            return self._answer[1]
        async with self._uow.autocommit() as tx:
            live = await self._live_keys.live_keys_exist(tx)
        if live:
            self._refused("live keys exist")
        self._answer = (now, not live)
        return not live

    def _refused(self, reason: str) -> None:
        if not self._warned:  # once per process: the setting is wrong, not each request
            log.warning("webhooks_allow_loopback_refused", reason=reason)
            self._warned = True


class UrlGuard:
    def __init__(self, resolver: Resolver, loopback: LoopbackSwitch) -> None:
        self._resolver = resolver
        self._loopback = loopback

    async def pin(self, url: str) -> Pinned:
        """The URL and the address to connect to; InvalidRequest on `url` when it is refused
        (`url_not_allowed`), malformed, or its host does not resolve (`url_unresolvable`)."""
        allow_loopback = await self._loopback.allowed()
        parsed = parse_webhook_url(url, allow_http=allow_loopback)
        if parsed.literal is not None:
            check_address(parsed.literal, allow_loopback=allow_loopback)
            return Pinned(parsed, parsed.literal)
        addresses = list(await self._resolver.resolve(parsed.host, parsed.port))
        if not addresses:
            raise InvalidRequest(
                "'url' names a host that does not resolve.", field="url", code=URL_UNRESOLVABLE
            )
        # Every address, not only the one pinned: a name that resolves to one public and one
        # private address is refused outright rather than depending on which comes first.
        for address in addresses:
            check_address(address, allow_loopback=allow_loopback)
        return Pinned(parsed, addresses[0])


def refused_reason(exc: InvalidRequest) -> str:
    """How a refused delivery is logged: the rule that refused it."""
    kind = "refused" if exc.code in (URL_NOT_ALLOWED, URL_UNRESOLVABLE) else "invalid_url"
    return f"{kind}: {exc.message}"
