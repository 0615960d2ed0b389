"""What the fuzzer may see the API refuse although the request matched the OpenAPI document.

schemathesis loads this module (`hooks` in schemathesis.toml). Its one hook, `filter_failure`,
drops a "schema-valid request rejected" failure (ST202, the positive-data check) only when an
allowance below explains it exactly: the operation, the status, the error code, the parameter the
error names, and where needed a test of the request itself. Each allowance says why the document
cannot carry the rule. Every other failure, and every other check, stands.

Constraints the schema can carry are in the schema instead (patterns, bounds, enums, `oneOf`
between alternative fields, the text rule on every free-text string, `format: date`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import schemathesis

from clearport.core.redaction import contains_card_number

# (the generated case, the error it got) -> whether the allowance applies to them
Test = Callable[[Any, dict[str, Any]], bool]

SCHEMA_VIOLATING_ACCEPTED = "ST201"
REJECTED_POSITIVE_DATA = "ST202"
CREATED_RESOURCE_NOT_FOUND = "ST302"


def always(_case: Any, _error: dict[str, Any]) -> bool:
    return True


# tools/fuzz.py names a file here; each refusal an allowance absorbs adds its name as a line.
ALLOWANCE_LOG_ENV = "CLEARPORT_FUZZ_ALLOWANCE_LOG"


@dataclass(frozen=True, slots=True)
class Allowance:
    name: str
    reason: str
    status: int
    codes: frozenset[str]
    # The `param` the error names (None in the set: an error naming none); None: any param.
    params: frozenset[str | None] | None
    operations: frozenset[str] | None = None  # "POST /v1/tokens"; None: every operation
    applies: Test = always

    def explains(self, operation: str, case: Any, status: int, error: dict[str, Any]) -> bool:
        return (
            status == self.status
            and error.get("code") in self.codes
            and (self.params is None or error.get("param") in self.params)
            and (self.operations is None or operation in self.operations)
            and self.applies(case, error)
        )


def _a_setting(_case: Any, error: dict[str, Any]) -> bool:
    param = error.get("param")
    return param == "settings" or (isinstance(param, str) and param.startswith("settings["))


def _both_cursors(case: Any, _error: dict[str, Any]) -> bool:
    query = case.query or {}
    return "starting_after" in query and "ending_before" in query


def _no_merchant(case: Any, _error: dict[str, Any]) -> bool:
    return "merchant" not in (case.query or {})


def _body_value(body: Any, param: str) -> Iterator[Any]:
    """The value of the body at `param` (`source[card][exp_year]`), if it has one."""
    value = body
    for part in param.replace("]", "").split("["):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]  # `rules[0][...]`: an index into a list
            continue
        if not isinstance(value, dict) or part not in value:
            return
        value = value[part]
    yield value


def _integral_float(case: Any, error: dict[str, Any]) -> bool:
    param = error.get("param")
    return isinstance(param, str) and any(
        isinstance(value, float) and value.is_integer() for value in _body_value(case.body, param)
    )


CARD_PARAMS = frozenset(
    f"{prefix}[{field}]"
    for prefix in ("card", "source[card]")
    for field in ("number", "exp_month", "exp_year", "cvc")
) | frozenset({"source[cvc]"})
CARD_OPERATIONS = frozenset({"POST /v1/tokens", "POST /v1/payments"})
AMOUNT_OPERATIONS = frozenset(
    {
        "POST /v1/payments",
        "POST /v1/payments/{payment_id}/capture",
        "POST /v1/payments/{payment_id}/refunds",
        "POST /v1/disputes",
        "POST /v1/adjustments",
    }
)


def _text_refused(case: Any, error: dict[str, Any]) -> bool:
    """The text the error names is blank, or holds what looks like a card number."""
    param = error.get("param")
    return isinstance(param, str) and any(
        isinstance(value, str) and (not value.strip() or contains_card_number(value))
        for value in _body_value(case.body, param)
    )


LISTS = None  # every list operation takes the two cursors
WEBHOOK_ENDPOINT_WRITES = frozenset(
    {"POST /v1/webhook_endpoints", "PATCH /v1/webhook_endpoints/{endpoint_id}"}
)

RULE_OPERATIONS = frozenset(
    {"POST /v1/routing_rule_sets", "POST /v1/risk_rule_sets", "POST /v1/routing_simulations"}
)


def _path_id_of_another_kind(case: Any, error: dict[str, Any]) -> bool:
    """The path parameter the error names holds a value its documented pattern refuses: a link
    inferred by parameter name alone carried another resource's id there (a routing rule set's
    `rrs_` id into `/v1/risk_rule_sets/{rule_set_id}`), so the request was never schema-valid."""
    param = error.get("param")
    value = (case.path_parameters or {}).get(param) if isinstance(param, str) else None
    pattern = re.search(r"pattern '([^']+)'", str(error.get("message", "")))
    return isinstance(value, str) and pattern is not None and not re.search(pattern[1], value)


ALLOWANCES: tuple[Allowance, ...] = (
    Allowance(
        "idempotency_key_reused",
        "The generator draws Idempotency-Key values from a small space and sends one again with "
        "another body; the contract answers that 422. Replays and 422s have their own tests.",
        422,
        frozenset({"idempotency_key_reused"}),
        frozenset({None}),
    ),
    Allowance(
        "both_cursors",
        "`starting_after` and `ending_before` exclude each other; OpenAPI cannot say that two "
        "query parameters may not be given together.",
        400,
        frozenset({"parameter_invalid"}),
        frozenset({"ending_before"}),
        LISTS,
        _both_cursors,
    ),
    Allowance(
        "operator_names_merchant",
        "Operators must name the merchant whose balance they read, merchant keys must not: one "
        "document serves both kinds of key, so `merchant` is optional in it.",
        400,
        frozenset({"parameter_invalid"}),
        frozenset({"merchant"}),
        frozenset({"GET /v1/balance", "GET /v1/balance_transactions"}),
        _no_merchant,
    ),
    Allowance(
        "expiry_in_future",
        "A key's `expires_at` must lie in the future: a bound that moves with the clock.",
        400,
        frozenset({"parameter_invalid"}),
        frozenset({"expires_at"}),
        frozenset({"POST /v1/merchants/{merchant_id}/keys", "POST /v1/operator_keys"}),
    ),
    Allowance(
        "card_checks",
        "Card numbers pass the Luhn check and fit a brand's ranges and lengths, expiries are "
        "not in the past and within 50 years of today, a CVC has its brand's length: none of "
        "it is a JSON Schema constraint.",
        400,
        frozenset(
            {
                "incorrect_number",
                "card_brand_unsupported",
                "expired_card",
                "incorrect_cvc",
                "parameter_invalid",
            }
        ),
        CARD_PARAMS,
        CARD_OPERATIONS,
    ),
    Allowance(
        "bank_account_checksums",
        "A routing number carries the ABA checksum and an IBAN its country's format and the "
        "mod-97 check digits.",
        400,
        frozenset({"parameter_invalid"}),
        frozenset({"routing_number", "iban"}),
        frozenset({"PUT /v1/merchants/{merchant_id}/bank_account"}),
    ),
    Allowance(
        "amount_bounded_by_state",
        "An amount is bounded by state and configuration the document cannot see: what the "
        "payment has left to capture, refund or dispute, and the deployment's maximum amount "
        "per currency (CLEARPORT_PAYMENT_MAX_AMOUNT_MINOR).",
        400,
        frozenset({"amount_too_large"}),
        frozenset({"amount"}),
        AMOUNT_OPERATIONS,
    ),
    Allowance(
        "settlement_date_bounded_by_state",
        "A settlement run's date is bounded by the clock (not in the future) and by the "
        "platform's history (not before its first transaction, a pricing table in effect).",
        400,
        frozenset({"date_in_future", "date_before_first_transaction", "parameter_invalid"}),
        frozenset({"business_date"}),
        frozenset({"POST /v1/settlement_runs"}),
    ),
    Allowance(
        "settlement_item_cursor",
        "A settlement item's cursor must name an item of that settlement (items page by time, "
        "not by id, decision 0403): which ids qualify is state.",
        400,
        frozenset({"parameter_invalid"}),
        frozenset({"starting_after", "ending_before"}),
        frozenset({"GET /v1/settlements/{settlement_id}/items"}),
    ),
    Allowance(
        "webhook_url_public_address",
        "Where a webhook URL leads is checked when it is set (the SSRF guard, decision 0604): "
        "the host must be a DNS name that resolves now, or a canonical literal, and every "
        "address must be public. DNS answers and address ranges are not JSON Schema.",
        400,
        frozenset({"url_not_allowed", "url_unresolvable", "parameter_invalid"}),
        frozenset({"url"}),
        WEBHOOK_ENDPOINT_WRITES,
    ),
    Allowance(
        "event_types_by_owner",
        "An endpoint subscribes only to the event types its owner's events can have (a "
        "merchant's or the platform's): the owner is the caller's key, not the request.",
        400,
        frozenset({"event_type_invalid"}),
        None,
        WEBHOOK_ENDPOINT_WRITES,
    ),
    Allowance(
        "redelivery_to_the_events_owner",
        "An event is redelivered only to an endpoint of the event's owner: which pairs qualify "
        "is state.",
        400,
        frozenset({"endpoint_mismatch"}),
        frozenset({"endpoint"}),
        frozenset({"POST /v1/events/{event_id}/redeliver"}),
    ),
    Allowance(
        "evidence_due_by_clock",
        "A dispute's evidence is due in the future, within 120 days: a bound that moves with "
        "the clock.",
        400,
        frozenset({"parameter_invalid"}),
        frozenset({"evidence_due_by"}),
        frozenset({"POST /v1/disputes"}),
    ),
    Allowance(
        "adjustment_in_a_settled_currency",
        "An adjustment's currency must be one the merchant settles (its default currency or one "
        "it has balances in): state.",
        400,
        frozenset({"currency_not_settled"}),
        frozenset({"currency"}),
        frozenset({"POST /v1/adjustments"}),
    ),
    Allowance(
        "text_says_something_and_no_card_number",
        "A reason or a piece of evidence must say something (not only spaces) and never hold a "
        "card number (it is stored and sent in events): a Luhn check is no JSON Schema pattern.",
        400,
        frozenset({"parameter_invalid"}),
        None,
        frozenset(
            {
                "POST /v1/adjustments",
                "POST /v1/disputes/{dispute_id}",
                "POST /v1/reconciliation_exceptions/{exception_id}/resolve",
            }
        ),
        _text_refused,
    ),
    Allowance(
        "settlement_file_content",
        "A reconciliation run names an uploaded file: whether its header is the layout of the "
        "connector's type (and whether that type has a layout) is in the file and the connector "
        "registry, not in the request.",
        400,
        frozenset({"file_format_invalid", "connector_type_unsupported"}),
        frozenset({"file", "connector"}),
        frozenset({"POST /v1/reconciliation_runs"}),
    ),
    Allowance(
        "file_content_checked",
        "An upload is recognised by its content (a PDF, PNG or JPEG signature; CSV text for "
        "reconciliation), at most 5 MB and not empty: the document can only say it is binary.",
        400,
        frozenset({"file_type_refused", "file_too_large", "parameter_invalid"}),
        frozenset({"file"}),
        frozenset({"POST /v1/files"}),
    ),
    Allowance(
        "integral_float",
        "JSON Schema counts 30004.0 as an integer; Clearport refuses a number written with a "
        "fraction or an exponent where an integer is due (decision 0007), so no amount ever "
        "passes through a float.",
        400,
        frozenset({"parameter_invalid"}),
        None,
        None,
        _integral_float,
    ),
    Allowance(
        "connector_name_taken",
        "A connector's name is unique (the built-in simulator's `simulator` included): which "
        "names are taken is state.",
        409,
        frozenset({"duplicate_connector"}),
        frozenset({"name"}),
        frozenset({"POST /v1/connectors"}),
    ),
    Allowance(
        "connector_settings_of_its_type",
        "A change's settings are checked against the connector's type, which the request does "
        "not carry (the document offers every type's settings): state.",
        400,
        frozenset({"parameter_invalid"}),
        None,
        frozenset({"PATCH /v1/connectors/{connector_id}"}),
        _a_setting,
    ),
    Allowance(
        "rules_checked_against_each_other_and_the_registry",
        "Whether a routing rule can ever match depends on the rules before it (the static "
        "checker refuses a shadowed or self-contradicting rule), a rule may name only registered "
        "connectors or installed risk plug-ins, and an amount condition needs exactly one "
        "currency: relations between rules, fields and state that a schema cannot state.",
        400,
        frozenset({"rule_invalid", "rule_unreachable"}),
        None,
        RULE_OPERATIONS,
    ),
    Allowance(
        "simulation_window_and_candidates",
        "`until` must follow `since` by at most 31 days (a relation between two fields), and a "
        "candidate named by id must exist (state).",
        400,
        frozenset({"parameter_invalid", "resource_missing"}),
        frozenset({"until", "routing_rule_set", "risk_rule_set"}),
        frozenset({"POST /v1/routing_simulations"}),
    ),
    Allowance(
        "path_id_of_another_kind",
        "The stateful phase infers links from parameter names alone and sends one resource's id "
        "into another's path (`rule_set_id` names both routing and risk rule sets); the value "
        "breaks the path's documented pattern, which the server rightly refuses (400).",
        400,
        frozenset({"parameter_invalid"}),
        None,
        None,
        _path_id_of_another_kind,
    ),
)


# The stateful phase infers links by parameter name, and expects what one operation created to
# be readable through the other. Where the API rightly has nothing there yet, the pair is listed
# with its reason.
NOT_CREATED_BY: dict[tuple[str, str], str] = {
    (
        "POST /v1/merchants",
        "GET /v1/merchants/{merchant_id}/bank_account",
    ): "A merchant is created without a bank account; PUT bank_account creates it.",
}


# Operations whose "schema-violating" requests the server rightly accepts, with the reason.
ACCEPTED_DESPITE_THE_SCHEMA: dict[str, str] = {
    "POST /v1/files": "A multipart file part is bytes whatever the generator meant by it: a "
    "`file` 'of the wrong type' (a number, null) goes over the wire as the bytes of its text, an "
    "upload the server checks by content (its `purpose` is checked: a wrong one is refused).",
}


def allowance_for(operation: str, case: Any, status: int, body: Any) -> Allowance | None:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    for allowance in ALLOWANCES:
        if allowance.explains(operation, case, status, error):
            return allowance
    return None


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep the failure unless it is a refused schema-valid request an allowance explains, an
    accepted upload whose file part the generator thought of as another type, or a resource an
    inferred link expected where none was created."""
    if failure.code == CREATED_RESOURCE_NOT_FOUND:
        # Logged as absorbed like an allowance, so the summary shows how often it applied.
        pair = (failure.created_with, failure.not_available_with)
        if pair not in NOT_CREATED_BY:
            return True
        _log("resource_not_created_by_link_source")
        return False
    operation = f"{case.method.upper()} {case.operation.path}"
    if failure.code == SCHEMA_VIOLATING_ACCEPTED:
        if operation not in ACCEPTED_DESPITE_THE_SCHEMA or response.status_code != 201:
            return True
        _log("multipart_file_is_bytes")
        return False
    if failure.code != REJECTED_POSITIVE_DATA:
        return True
    try:
        body = response.json()
    except ValueError:
        return True
    allowance = allowance_for(operation, case, response.status_code, body)
    if allowance is None:
        return True
    _log(allowance.name)
    return False


def _log(name: str) -> None:
    path = os.environ.get(ALLOWANCE_LOG_ENV)
    if path:
        with open(path, "a") as file:
            file.write(name + "\n")
