"""Risk conditions from plug-ins: a distribution declares an entry point in the
`clearport.risk_conditions` group whose object is a `RiskCondition` (or a class making one):

    [project.entry-points."clearport.risk_conditions"]
    high_risk_mcc = "acme_risk:HighRiskMcc"

A rule then uses it as `{"name": ..., "mode": ..., "kind": "high_risk_mcc", "params": {...}}`.
One that fails to load, or takes a built-in kind's name, is logged and left out.
"""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from typing import Any

import structlog

from clearport.risk.domain import BUILT_IN_KINDS, RiskCondition

log = structlog.get_logger("clearport.risk")

ENTRY_POINT_GROUP = "clearport.risk_conditions"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def risk_conditions() -> dict[str, RiskCondition]:
    found: dict[str, RiskCondition] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded: Any = entry.load()
            condition = loaded() if isinstance(loaded, type) else loaded
        except Exception as exc:
            log.error("risk_plugin_failed", plugin=entry.name, error=type(exc).__name__)
            continue
        name = getattr(condition, "name", None)
        usable = all(hasattr(condition, a) for a in ("check", "matches"))
        if not isinstance(name, str) or not _NAME.match(name) or not usable:
            log.error("risk_plugin_invalid", plugin=entry.name)
            continue
        if name in BUILT_IN_KINDS or name in found:
            log.error("risk_plugin_duplicate", plugin=entry.name, kind=name)
            continue
        found[name] = condition
    return found
