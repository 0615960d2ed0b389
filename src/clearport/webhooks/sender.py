"""Deliveries over HTTP (httpx), pinned to the address the guard checked.

The request goes to `scheme://<address>:<port><path>` with the URL's own host in `Host` and, for
https, as the TLS server name (httpcore's `sni_hostname`), so the certificate is verified against
the name the merchant gave while the connection cannot go anywhere but the checked address. One
client per endpoint batch: a connection is reused for one endpoint's requests only, never for
another name that happens to share the address. No redirect is followed, no proxy from the
environment is used, the whole request is bounded by `timeout_s` (connecting by
`connect_timeout_s`) and at most `max_response_bytes` of an answer are read.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from clearport.webhooks.addresses import IPAddress, WebhookUrl
from clearport.webhooks.domain import SendResult


def ssl_context(ca_bundle: Path | None = None) -> ssl.SSLContext:
    """certifi's authorities (httpx's default), plus `ca_bundle`'s when given."""
    context = httpx.create_ssl_context(trust_env=False)
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


def _caused_by_tls(exc: BaseException) -> bool:
    """Whether an SSL error is somewhere down the chain (httpx wraps httpcore's, which wraps
    the ssl module's)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _error_label(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "tls_error" if _caused_by_tls(exc) else "connect_failed"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "protocol_error"
    return f"connection_error: {type(exc).__name__}"


class _Session:
    def __init__(
        self,
        client: httpx.AsyncClient,
        url: WebhookUrl,
        address: IPAddress,
        in_flight: asyncio.Semaphore,
        *,
        timeout_s: float,
        max_response_bytes: int,
    ) -> None:
        self._client = client
        self._url = url
        self._target = url.url_for(address)
        self._in_flight = in_flight
        self._timeout_s = timeout_s
        self._max_response_bytes = max_response_bytes

    async def post(self, body: bytes, headers: Mapping[str, str]) -> SendResult:
        extensions = {"sni_hostname": self._url.host} if self._url.scheme == "https" else {}
        all_headers = {**headers, "Host": self._url.host_header}
        async with self._in_flight:
            started = time.monotonic()
            status: int | None = None
            error: str | None = None
            try:
                async with asyncio.timeout(self._timeout_s):
                    async with self._client.stream(
                        "POST",
                        self._target,
                        content=body,
                        headers=all_headers,
                        extensions=extensions,
                    ) as response:
                        status = response.status_code
                        await self._read_some(response)
            except Exception as exc:  # any failure to get an answer is a failed attempt
                # Once the status came, the receiver has answered: the rest of its body
                # does not matter.
                error = None if status is not None else _error_label(exc)
            if error is None and status is not None and 300 <= status < 400:
                error = "redirect_not_followed"
            return SendResult(status, error, int((time.monotonic() - started) * 1000))

    async def _read_some(self, response: httpx.Response) -> None:
        """Read the answer up to the bound, then stop (the connection is closed, not kept)."""
        read = 0
        async for chunk in response.aiter_raw():
            read += len(chunk)
            if read >= self._max_response_bytes:
                return


class HttpxSender:
    def __init__(
        self,
        *,
        connect_timeout_s: float,
        timeout_s: float,
        max_response_bytes: int,
        concurrency: int,
        ssl: ssl.SSLContext,
    ) -> None:
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._timeout_s = timeout_s
        self._max_response_bytes = max_response_bytes
        self._ssl = ssl
        # Requests in flight in this process, whatever endpoint they go to.
        self._in_flight = asyncio.Semaphore(concurrency)

    @asynccontextmanager
    async def session(self, url: WebhookUrl, address: IPAddress) -> AsyncIterator[_Session]:
        async with httpx.AsyncClient(
            verify=self._ssl,
            timeout=self._timeout,
            follow_redirects=False,
            trust_env=False,
        ) as client:
            yield _Session(
                client,
                url,
                address,
                self._in_flight,
                timeout_s=self._timeout_s,
                max_response_bytes=self._max_response_bytes,
            )
