"""The HTTP acquirer's settings (`type: "http_acquirer"`)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from clearport.connectors.settings import NetworkSettings

URL_PATTERN = r"^https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~\-/]*)?$"


class HttpAcquirerSettings(NetworkSettings):
    url: str = Field(
        max_length=2048,
        pattern=URL_PATTERN,
        description="The acquirer API's base URL (`http://127.0.0.1:9101`).",
    )
    api_key: SecretStr | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="Sent as `Authorization: Bearer …`; stored encrypted, shown masked.",
    )
    max_connections: int = Field(
        default=16,
        ge=1,
        le=1_000,
        description="The bounded pool of HTTP connections. Each carries one request at a time "
        "(throughput at most connections / latency): raise it for a slow acquirer. httpx's pool "
        "costs CPU per request in proportion to its size (bench/README.md).",
    )
