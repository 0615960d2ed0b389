"""`http_acquirer`: an acquirer's HTTP/JSON API over httpx (client.py), its wire format
(transform.py), its settings, and its simulator host (host.py, `clearport simulate http`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clearport.connectors.http_acquirer.client import HttpAcquirerConnector
from clearport.connectors.http_acquirer.settings import HttpAcquirerSettings
from clearport.connectors.ports import BuildContext, CheckedSettings
from clearport.connectors.settings import check, schema_of


class HttpAcquirerType:
    name = "http_acquirer"

    def settings_schema(self) -> dict[str, Any]:
        return schema_of(HttpAcquirerSettings)

    def check_settings(self, settings: Mapping[str, Any]) -> CheckedSettings:
        return check(HttpAcquirerSettings, settings)

    def build(
        self,
        name: str,
        settings: Mapping[str, Any],
        secret: Mapping[str, str],
        context: BuildContext,
    ) -> HttpAcquirerConnector:
        parsed = HttpAcquirerSettings.model_validate({**settings, **secret})
        return HttpAcquirerConnector(
            name,
            parsed.url,
            api_key=None if parsed.api_key is None else parsed.api_key.get_secret_value(),
            timeout_s=parsed.timeout_ms / 1000,
            connect_timeout_s=parsed.connect_timeout_ms / 1000,
            max_connections=parsed.max_connections,
        )
