"""The fuzzer's allowances explain exactly what they name (tools/fuzz_allowances.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tools.fuzz_allowances import allowance_for

RISK_ACTIVATE = "POST /v1/risk_rule_sets/{rule_set_id}/activate"
PATTERN_ERROR = {
    "code": "parameter_invalid",
    "param": "rule_set_id",
    "message": "Invalid 'rule_set_id': String should match pattern '^rks_[0-9A-HJKMNP-TV-Z]{26}$'.",
}


@dataclass
class Case:
    path_parameters: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None


def test_a_routing_rule_set_id_in_the_risk_rule_sets_path_is_explained() -> None:
    case = Case(path_parameters={"rule_set_id": "rrs_01M97ND6CTWT18EM07QVTF5FA4"})
    allowance = allowance_for(RISK_ACTIVATE, case, 400, {"error": PATTERN_ERROR})
    assert allowance is not None and allowance.name == "path_id_of_another_kind"


def test_a_refused_id_that_matches_its_pattern_is_not_explained() -> None:
    # The server refusing a value the document allows is a real failure.
    case = Case(path_parameters={"rule_set_id": "rks_01M97ND6CTWT18EM07QVTF5FA4"})
    assert allowance_for(RISK_ACTIVATE, case, 400, {"error": PATTERN_ERROR}) is None


def test_a_body_field_is_not_a_path_id() -> None:
    case = Case(body={"rule_set_id": "rrs_01M97ND6CTWT18EM07QVTF5FA4"})
    assert allowance_for(RISK_ACTIVATE, case, 400, {"error": PATTERN_ERROR}) is None
