"""A risk condition from outside Clearport: the merchant's MCC is on the plug-in's list."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class HighRiskMcc:
    name = "high_risk_mcc"

    def check(self, params: Mapping[str, Any]) -> None:
        mccs = params.get("mccs")
        if not isinstance(mccs, list) or not all(isinstance(m, str) for m in mccs):
            raise ValueError("'mccs' must be a list of MCCs")

    def matches(self, facts: Any, params: Mapping[str, Any]) -> bool:
        return bool(facts.mcc in params["mccs"])
