"""The HTTP acquirer connector: httpx, async, one bounded connection pool per connector, an
explicit timeout for connecting, writing, reading and waiting for a pooled connection.

Transport failures are mapped where they happen, by what they imply: a connection that could not
be made (refused, connect timeout, no free connection in the pool) sent nothing, so
`UNREACHABLE`; once the request may have left, a read timeout is `UNKNOWN` (`timeout`) and a
broken connection `UNKNOWN` (`processing_error`). Requests and answers are never logged: the
request body holds the card number.
"""

from __future__ import annotations

from typing import Any

import httpx

from clearport.connectors.domain import (
    ConnectorCard,
    ConnectorResult,
    Failure,
    unknown,
    unreachable,
)
from clearport.connectors.http_acquirer.transform import (
    authorization_body,
    follow_up_body,
    parse_answer,
    parse_inquiry,
    reversal_body,
)

MAX_ANSWER_BYTES = 65_536


class HttpAcquirerConnector:
    inquires = True

    def __init__(
        self,
        name: str,
        url: str,
        *,
        api_key: str | None,
        timeout_s: float,
        connect_timeout_s: float,
        max_connections: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        headers = {"Accept": "application/json", "User-Agent": "clearport"}
        if api_key is not None:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(
                timeout_s, connect=connect_timeout_s, write=timeout_s, pool=connect_timeout_s
            ),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,
            transport=transport,
        )

    async def _send(
        self, method: str, path: str, body: dict[str, Any] | None
    ) -> tuple[int, object] | ConnectorResult:
        """(status, parsed JSON or None), or the result a transport failure means."""
        try:
            response = await self._client.request(method, path, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
            return unreachable(Failure.CONNECTION_REFUSED)
        except httpx.TimeoutException:
            return unknown(Failure.TIMEOUT)
        except httpx.HTTPError:
            return unknown(Failure.PROCESSING_ERROR)
        if len(response.content) > MAX_ANSWER_BYTES:
            return response.status_code, None
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    async def _post(self, path: str, body: dict[str, Any], reference: str) -> ConnectorResult:
        sent = await self._send("POST", path, body)
        if isinstance(sent, ConnectorResult):
            return sent
        return parse_answer(*sent, reference)

    async def authorize(
        self,
        reference: str,
        amount_minor: int,
        currency: str,
        card: ConnectorCard,
        *,
        capture: bool,
    ) -> ConnectorResult:
        body = authorization_body(reference, amount_minor, currency, card, capture=capture)
        return await self._post("/v1/authorizations", body, reference)

    async def capture(
        self, reference: str, authorization: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        body = follow_up_body(reference, authorization, amount_minor, currency)
        return await self._post("/v1/captures", body, reference)

    async def void(self, reference: str, authorization: str) -> ConnectorResult:
        body = follow_up_body(reference, authorization, None, None)
        return await self._post("/v1/voids", body, reference)

    async def refund(
        self, reference: str, capture_reference: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        body = follow_up_body(reference, capture_reference, amount_minor, currency)
        return await self._post("/v1/refunds", body, reference)

    async def reverse(
        self, reference: str, original: str, amount_minor: int, currency: str
    ) -> ConnectorResult:
        body = reversal_body(reference, original, amount_minor, currency)
        return await self._post("/v1/reversals", body, reference)

    async def status(self, reference: str) -> ConnectorResult:
        sent = await self._send("GET", f"/v1/transactions/{reference}", None)
        if isinstance(sent, ConnectorResult):
            return sent
        return parse_inquiry(*sent, reference)

    async def close(self) -> None:
        await self._client.aclose()
