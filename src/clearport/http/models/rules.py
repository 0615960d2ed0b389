"""Routing and risk rule sets as the API takes and shows them (API.md "Routing and risk").

The schema states each rule's shape; what it cannot state (a shadowed rule, an unknown
connector, an amount condition without its one currency) the services check and answer with a
400 naming the rule (`routing/checker.py`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, ConfigDict, Discriminator, Field, StringConstraints, Tag

from clearport.http.models.base import (
    ListOf,
    ResponseModel,
    RiskRuleSetId,
    RoutingRuleSetId,
    RoutingSimulationId,
    Timestamp,
)
from clearport.http.schemas import Pricing, StrictModel
from clearport.risk.domain import BUILT_IN_KINDS
from clearport.routing.domain import MAX_CANDIDATES, MAX_RULES, MAX_VALUES, MAX_WEIGHT
from clearport.rulesets.domain import RULE_NAME
from clearport.vault.cards import Brand

RuleName = Annotated[str, StringConstraints(pattern=RULE_NAME.pattern)]
Connector = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
Digits = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,8}$")]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z]{3}$")]
Mcc = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]
Merchant = Annotated[str, StringConstraints(pattern=r"^mer_[0-9A-Za-z]{1,40}$")]
Funding = Literal["credit", "debit", "prepaid"]
IdType = TypeVar("IdType")
InlineType = TypeVar("InlineType")
Amount = Annotated[int, Field(ge=0, le=10**15)]


_Values = Field(min_length=1, max_length=MAX_VALUES)
# A condition is one value or a list of them (any of which matches).
Brands = Brand | Annotated[list[Brand], _Values]
Fundings = Funding | Annotated[list[Funding], _Values]
Countries = Country | Annotated[list[Country], _Values]
Codes = Code | Annotated[list[Code], _Values]
Merchants = Merchant | Annotated[list[Merchant], _Values]
Mccs = Mcc | Annotated[list[Mcc], _Values]


class RoutingWhen(StrictModel):
    """All given conditions must hold; a list means any of its values."""

    brand: Brands | None = None
    bin_prefix: Digits | None = None
    bin_range: Annotated[list[Digits], Field(min_length=2, max_length=2)] | None = Field(
        default=None, description='`["400000", "499999"]`: inclusive, equal lengths.'
    )
    funding: Fundings | None = None
    issuer_country: Countries | None = None
    currency: Codes | None = None
    amount_gte: Amount | None = Field(
        default=None, description="Minor units of the rule's one `currency`."
    )
    amount_lt: Amount | None = Field(
        default=None, description="Minor units of the rule's one `currency`."
    )
    merchant: Merchants | None = None
    mcc: Mccs | None = None


class Candidates(StrictModel):
    connectors: Annotated[
        list[Connector],
        Field(min_length=1, max_length=MAX_CANDIDATES, json_schema_extra={"uniqueItems": True}),
    ]


class SplitShare(StrictModel):
    connector: Connector
    weight: Annotated[int, Field(ge=1, le=MAX_WEIGHT)]


class Split(StrictModel):
    split: Annotated[list[SplitShare], Field(min_length=1, max_length=MAX_CANDIDATES)] = Field(
        description="Deterministic per payment id; the others follow as failover, heaviest first."
    )


def _outcome(raw: Any) -> str:
    return "weighted" if isinstance(raw, dict) and "split" in raw else "ordered"


# Told apart by their one key, so an error names the field of the outcome that was meant.
Outcome = Annotated[
    Annotated[Candidates, Tag("ordered")] | Annotated[Split, Tag("weighted")],
    Discriminator(_outcome),
]


class RoutingRule(StrictModel):
    name: RuleName
    when: RoutingWhen = Field(default_factory=RoutingWhen)
    then: Outcome


class RoutingRuleSetCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "rules": [
                        {
                            "name": "debit-to-b",
                            "when": {"brand": "visa", "funding": "debit"},
                            "then": {"connectors": ["acquirer-b", "acquirer-a"]},
                        },
                        {
                            "name": "large-usd",
                            "when": {"currency": "usd", "amount_gte": 100000},
                            "then": {
                                "split": [
                                    {"connector": "acquirer-a", "weight": 70},
                                    {"connector": "acquirer-b", "weight": 30},
                                ]
                            },
                        },
                    ],
                    "default": {"connectors": ["acquirer-a"]},
                }
            ]
        }
    )

    rules: Annotated[list[RoutingRule], Field(max_length=MAX_RULES)]
    default: Candidates


class BlockListRule(StrictModel):
    name: RuleName
    mode: Literal["enforce", "dry_run"]
    kind: Literal["block_list"]
    field: Literal["bin", "fingerprint", "issuer_country"]
    values: Annotated[
        list[Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z_-]{1,128}$")]],
        Field(min_length=1, max_length=10_000),
    ] = Field(description="BIN prefixes (1 to 8 digits), card fingerprints or country codes.")


class AmountLimitRule(StrictModel):
    name: RuleName
    mode: Literal["enforce", "dry_run"]
    kind: Literal["amount_limit"]
    currency: Code
    max_amount: Amount


class VelocityRule(StrictModel):
    name: RuleName
    mode: Literal["enforce", "dry_run"]
    kind: Literal["velocity"]
    per: Literal["card_fingerprint", "merchant"]
    window_s: Annotated[int, Field(ge=1, le=31 * 86_400)]
    max_count: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    max_amount: Amount | None = Field(default=None, description="Needs `currency`.")
    currency: Code | None = None


def _not_built_in(kind: str) -> str:
    if kind in BUILT_IN_KINDS:
        raise ValueError("a built-in kind has its own parameters")
    return kind


PluginKind = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$"),
    AfterValidator(_not_built_in),
    Field(
        description="A plug-in's condition (`clearport.risk_conditions`).",
        json_schema_extra={"not": {"enum": list(BUILT_IN_KINDS)}},
    ),
]


ParamName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
ParamScalar = Annotated[str, StringConstraints(max_length=200)] | int | bool
ParamValue = ParamScalar | Annotated[list[ParamScalar], Field(max_length=1_000)]


class PluginRule(StrictModel):
    name: RuleName
    mode: Literal["enforce", "dry_run"]
    kind: PluginKind
    params: Annotated[dict[ParamName, ParamValue], Field(max_length=50)] = Field(
        description="The plug-in's parameters: names in snake case; strings, integers, "
        "booleans or lists of them.",
        # Only names in snake case: `patternProperties` alone would let any other name through.
        json_schema_extra={"additionalProperties": False},
    )


def _rule_kind(raw: Any) -> str:
    kind = raw.get("kind") if isinstance(raw, dict) else getattr(raw, "kind", None)
    return kind if kind in BUILT_IN_KINDS else "plugin"


# Told apart by `kind`, so an error names the member the rule's kind chose.
RiskRule = Annotated[
    Annotated[BlockListRule, Tag("block_list")]
    | Annotated[AmountLimitRule, Tag("amount_limit")]
    | Annotated[VelocityRule, Tag("velocity")]
    | Annotated[PluginRule, Tag("plugin")],
    Discriminator(_rule_kind),
]


class RiskRuleSetCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "rules": [
                        {
                            "name": "blocked-bins",
                            "mode": "enforce",
                            "kind": "block_list",
                            "field": "bin",
                            "values": ["400000"],
                        },
                        {
                            "name": "card-velocity",
                            "mode": "dry_run",
                            "kind": "velocity",
                            "per": "card_fingerprint",
                            "window_s": 3600,
                            "max_count": 5,
                        },
                    ]
                }
            ]
        }
    )

    rules: Annotated[list[RiskRule], Field(max_length=MAX_RULES)]


Status = Literal["draft", "active", "inactive"]


class _RuleSet(ResponseModel):
    version: int = Field(ge=1)
    status: Status
    created: Timestamp
    activated: Timestamp | None = Field(description="When it last became the active set.")


class RoutingRuleSet(_RuleSet):
    id: RoutingRuleSetId
    object: Literal["routing_rule_set"]
    rules: list[RoutingRule]
    default: Candidates


class RiskRuleSet(_RuleSet):
    id: RiskRuleSetId
    object: Literal["risk_rule_set"]
    rules: list[RiskRule]


class RoutingRuleSetList(ListOf[RoutingRuleSet]):
    pass


class RiskRuleSetList(ListOf[RiskRuleSet]):
    pass


def _by_id(raw: Any) -> str:
    return "id" if isinstance(raw, str) else "inline"


# A candidate is a stored set's id or a set inline; told apart by type, so an error names the
# inline set's own field.
ById = Annotated[
    Annotated[IdType, Tag("id")] | Annotated[InlineType, Tag("inline")], Discriminator(_by_id)
]
# Up to 2100-01-01: a window is a time Clearport has payments for.
Moment = Annotated[int, Field(ge=0, le=4_102_444_800)]


class RoutingSimulationCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "routing_rule_set": {
                        "rules": [
                            {
                                "name": "debit-to-b",
                                "when": {"funding": "debit"},
                                "then": {"connectors": ["acquirer-b"]},
                            }
                        ],
                        "default": {"connectors": ["acquirer-a"]},
                    },
                    "since": 1764000000,
                    "until": 1764604800,
                }
            ]
        }
    )

    routing_rule_set: ById[RoutingRuleSetId, RoutingRuleSetCreate] | None = Field(
        default=None,
        description="A stored set's id or a set inline; omitted: each payment keeps the "
        "connector it went to.",
    )
    risk_rule_set: ById[RiskRuleSetId, RiskRuleSetCreate] | None = Field(
        default=None,
        description="A stored set's id or a set inline; omitted: what the risk rules of the "
        "time decided stands.",
    )
    pricing: Pricing | None = Field(
        default=None, description="Priced instead of each merchant's own pricing."
    )
    since: Moment = Field(description="Unix seconds, inclusive.")
    until: Moment = Field(description="Unix seconds, exclusive; at most 31 days after since.")


class Money(ResponseModel):
    currency: str
    amount: int


class ConnectorProjection(ResponseModel):
    connector: str = Field(description="`(unrouted)`: released payments with no routing rules.")
    count: int = Field(ge=0)
    volume: list[Money]
    projected_approval_rate_bps: int = Field(ge=0, le=10_000)
    projected_approved: int = Field(ge=0)
    projected_fees: list[Money] = Field(description="If every projected approval is captured.")


class PaymentChanges(ResponseModel):
    count: int = Field(ge=0)
    payments: list[str] = Field(description="The first 100 of them.")


class CandidateName(ResponseModel):
    id: str | None = Field(description="Null for a set given inline.")
    version: int | None


class RoutingSimulation(ResponseModel):
    id: RoutingSimulationId
    object: Literal["routing_simulation"]
    since: Timestamp
    until: Timestamp
    routing_rule_set: CandidateName | None
    risk_rule_set: CandidateName | None
    pricing: dict[str, Any] | None
    payments: int = Field(ge=0, description="Payments of the window replayed.")
    rerouted: int = Field(ge=0, description="Sent to another connector than they went to.")
    blocked: int = Field(ge=0, description="Blocked under the candidate risk rules.")
    newly_blocked: PaymentChanges
    released: PaymentChanges
    connectors: list[ConnectorProjection]
