"""The connector types this process knows: the built-in ones and the plug-ins.

A plug-in is a distribution that declares an entry point in the `clearport.connectors` group,
named by its type, whose object is a `ConnectorType` (or a class or function returning one):

    [project.entry-points."clearport.connectors"]
    acme_pay = "acme_clearport:AcmePayType"

Plug-ins are read once, when the container is built. One that fails to load, or names a type
Clearport already has, is logged and left out: a broken plug-in never stops the platform, and
never replaces a built-in connector.
"""

from __future__ import annotations

import re
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import structlog

from clearport.connectors.http_acquirer import HttpAcquirerType
from clearport.connectors.iso8583 import Iso8583Type
from clearport.connectors.ports import ConnectorType
from clearport.connectors.simulator.connector import SimulatorType

log = structlog.get_logger("clearport.connectors")

ENTRY_POINT_GROUP = "clearport.connectors"
TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_REQUIRED = ("name", "settings_schema", "check_settings", "build")


def built_in_types() -> dict[str, ConnectorType]:
    types: list[ConnectorType] = [SimulatorType(), HttpAcquirerType(), Iso8583Type()]
    return {t.name: t for t in types}


def _load(entry: EntryPoint) -> ConnectorType | None:
    try:
        loaded: Any = entry.load()
        candidate = loaded() if callable(loaded) and not hasattr(loaded, "build") else loaded
        if isinstance(candidate, type):
            candidate = candidate()
    except Exception as exc:
        log.error("connector_plugin_failed", plugin=entry.name, error=type(exc).__name__)
        return None
    if not all(hasattr(candidate, attribute) for attribute in _REQUIRED):
        log.error("connector_plugin_invalid", plugin=entry.name)
        return None
    return candidate  # type: ignore[no-any-return]


def connector_types() -> dict[str, ConnectorType]:
    """Built-in types, then every plug-in found on the path now."""
    types = built_in_types()
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        plugin = _load(entry)
        if plugin is None:
            continue
        name = getattr(plugin, "name", None)
        if not isinstance(name, str) or not TYPE_NAME.match(name) or name != entry.name:
            log.error("connector_plugin_misnamed", plugin=entry.name)
            continue
        if name in types:
            log.error("connector_plugin_shadows", plugin=entry.name)
            continue
        types[name] = plugin
        log.info("connector_plugin_loaded", plugin=name)
    return types
