"""A third-party connector registered through the `clearport.connectors` entry-point group: a
dist-info on `sys.path` (tests/plugins) is all it takes. A broken plug-in, or one that claims a
built-in type's name, is left out."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearport.access.domain import SYSTEM_CLI, Origin
from clearport.config import Settings
from clearport.connectors.catalog import connector_types
from clearport.connectors.service import NewConnector
from clearport.connectors.simulator.connector import SimulatorType
from clearport.core.sensitive import SensitiveStr
from clearport.http.app import create_app
from clearport.payments.domain import PaymentStatus
from clearport.payments.service import InlineCard, NewPayment
from clearport.vault.cards import CardInput
from clearport.wiring import Container
from tests.payments_support import merchant_principal, with_container
from tests.support import Api

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"


@pytest.fixture
def plugin_installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(PLUGINS))
    importlib.invalidate_caches()
    yield
    importlib.invalidate_caches()


def test_the_catalog_loads_the_plugin_and_leaves_out_the_bad_ones(plugin_installed: None) -> None:
    types = connector_types()
    assert type(types["echo"]).__name__ == "EchoType"
    assert "broken" not in types  # its module does not exist
    assert isinstance(types["simulator"], SimulatorType)  # not replaced by the impostor


def test_without_the_plugin_its_type_is_unknown() -> None:
    assert "echo" not in connector_types()


def test_a_payment_goes_through_the_plugin_connector(
    plugin_installed: None, api: Api, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    merchant_id, _ = api.merchant()
    card = CardInput(SensitiveStr("4242424242424242"), 12, 2030)
    new = NewPayment(1500, "usd", InlineCard(card, SensitiveStr("123")), False, None, {})

    async def work(c: Container) -> None:
        view = await c.connectors.create(
            SYSTEM_CLI, Origin("test"), NewConnector("echo-1", "echo", {"prefix": "ECHO"})
        )
        assert view.shown_settings == {"prefix": "ECHO"}
        principal = merchant_principal(merchant_id)
        payment = await c.payments.create(principal, new, None)
        assert (payment.status, payment.connector) == (PaymentStatus.AUTHORIZED, "echo-1")
        assert payment.routing["candidates"] == ["echo-1"]
        assert (payment.network_reference or "").startswith("ECHO")
        captured = await c.payments.capture(principal, payment.id, None, None)
        assert captured.status is PaymentStatus.CAPTURED
        # The API's document states the plug-in's settings.
        document = create_app(c).openapi()
        options = document["components"]["schemas"]["ConnectorCreate"]["oneOf"]
        echo = [o for o in options if o["properties"]["type"].get("const") == "echo"]
        assert echo and echo[0]["properties"]["settings"]["required"] == ["prefix"]

    with_container(settings, database_url, tmp_path, work, connectors_default_order=None)
