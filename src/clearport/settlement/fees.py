"""Pricing: what a merchant pays for one settled item.

Two models, chosen per merchant (the `pricing` JSON of the merchant API):

- blended: `percent_bps` of the amount + `fixed_minor` (per currency), with per-brand overrides.
  The whole fee is the acquirer's markup (no interchange or scheme fee is shown separately).
- interchange_plus ("interchange++"): interchange (by brand x card type x region, from a versioned
  table) + scheme fee (by brand x region) + the acquirer's markup (`markup_bps` +
  `markup_fixed_minor`, per currency).

Fixed amounts are per currency (decision 0703): a merchant's `fixed_minor` that names no amount in
the item's currency charges no fixed part there (its terms say so); a table row whose fixed part
is not given in the item's currency is not known there, so the item is priced at the fallback and
flagged, like a missing row.

Every component is first computed exactly (a `Fraction` of a minor unit), then rounded half-even
per item. The difference between the sum of rounded items and the rounded exact sum is posted to
the platform rounding account by settlement (see `FeeTotals`), so no fraction of a cent is ever lost
or invented.

Refunds carry no fee and return none (decision 0401): a refund's fee components are all zero.

A missing interchange row never prices at zero: the documented fallback is the most expensive row
of the same brand and region (else the table's `fallback` rate), and the item is flagged
`interchange_fallback` in the settlement detail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from clearport.core.errors import InvalidRequest, invariant
from clearport.core.money import CURRENCY_EXPONENTS

BPS = 10_000

CARD_TYPES = ("consumer_debit", "consumer_credit", "consumer_prepaid", "commercial")
REGIONS = ("eea", "us", "uk", "intl")

# EEA member states: the EU Interchange Fee Regulation (2015/751) caps apply to consumer cards
# issued and acquired here.
# fmt: off
EEA_COUNTRIES = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
    "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
})
# fmt: on

# The acquiring region of a merchant's country; every other country is DEFAULT_REGION. Written
# once: the pricing statement receives this table as arrays.
DEFAULT_REGION = "intl"
COUNTRY_REGIONS: Mapping[str, str] = MappingProxyType(
    {"US": "us", "GB": "uk"} | dict.fromkeys(sorted(EEA_COUNTRIES), "eea")
)

FLAG_INTERCHANGE_FALLBACK = "interchange_fallback"
FLAG_SCHEME_FEE_FALLBACK = "scheme_fee_fallback"


def divide_half_even(numerator: int, denominator: int) -> int:
    """`numerator / denominator` rounded half-even to an integer, in integers only: the floor
    quotient, plus one when the remainder is past half the divisor, or exactly half and the
    quotient odd. The one rounding rule of settlement's arithmetic (`round` of the Fraction
    gives the same integer, and so does SQL's stl_round_half_even: tests hold them to it)."""
    invariant(denominator > 0, "a positive divisor")
    quotient, remainder = divmod(numerator, denominator)  # floor: remainder in [0, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient & 1):
        return quotient + 1
    return quotient


def round_half_even(value: Fraction) -> int:
    """Banker's rounding to a whole minor unit (`divide_half_even` of the reduced fraction)."""
    return divide_half_even(value.numerator, value.denominator)


def region_for_country(country: str) -> str:
    """The interchange region of a merchant, from its country (acquiring region)."""
    return COUNTRY_REGIONS.get(country.upper(), DEFAULT_REGION)


def interchange_region(merchant_country: str, issuer_country: str | None) -> str:
    """The region an item's interchange is priced in (decision 0513): the acquiring region when
    the card was issued there (domestic or intra-regional) or its issuer is not known (the BIN
    is not in the table); otherwise inter-regional (`intl`)."""
    acquiring = region_for_country(merchant_country)
    if issuer_country is None or region_for_country(issuer_country) == acquiring:
        return acquiring
    return DEFAULT_REGION


def card_type_of(funding: str | None, category: str | None) -> str | None:
    """The interchange card type of a card from its BIN data; None when its BIN is not known."""
    if category == "commercial":
        return "commercial"
    if funding is None:
        return None
    card_type = f"consumer_{funding}"
    invariant(card_type in CARD_TYPES, f"unknown funding {funding}")
    return card_type


@dataclass(frozen=True, slots=True)
class Rate:
    """`bps` basis points (may be fractional, e.g. 1.6) of the amount plus a fixed amount in the
    item's currency. `fixed_minor` maps a currency to minor units of it (a fixed amount means a
    different sum of money in every currency, so it is never one number); None: no fixed part in
    any currency."""

    bps: Fraction
    fixed_minor: Mapping[str, int] | None = None

    def fixed_in(self, currency: str) -> int:
        """The fixed part in `currency`; 0 when it names none there."""
        return 0 if self.fixed_minor is None else self.fixed_minor.get(currency, 0)

    def applies_to(self, currency: str) -> bool:
        """Whether the rate is known in `currency`: it has no fixed part, or one there."""
        return self.fixed_minor is None or currency in self.fixed_minor

    def exact(self, amount_minor: int, currency: str) -> Fraction:
        return Fraction(amount_minor) * self.bps / BPS + self.fixed_in(currency)

    @staticmethod
    def parse(
        raw: Mapping[str, Any], *, bps_key: str = "bps", fixed_key: str = "fixed_minor"
    ) -> Rate:
        bps = Fraction(str(raw[bps_key]))
        invariant(bps >= 0, "rates are non-negative")
        fixed = raw.get(fixed_key)
        if fixed is None:
            return Rate(bps)
        invariant(isinstance(fixed, Mapping), f"'{fixed_key}' is per currency")
        for currency, amount in fixed.items():
            invariant(
                currency in CURRENCY_EXPONENTS and type(amount) is int and amount >= 0,
                f"'{fixed_key}' maps currencies to non-negative minor units",
            )
        return Rate(bps, MappingProxyType(dict(fixed)))


@dataclass(frozen=True, slots=True)
class BlendedPricing:
    rate: Rate
    brand_overrides: Mapping[str, Rate] = field(default_factory=dict)

    def rate_for(self, brand: str) -> Rate:
        return self.brand_overrides.get(brand, self.rate)


@dataclass(frozen=True, slots=True)
class InterchangePlusPricing:
    markup: Rate


Pricing = BlendedPricing | InterchangePlusPricing


def parse_pricing(raw: Mapping[str, Any]) -> Pricing:
    """The merchant's `pricing` JSON (validated by the API schema) as a domain value."""
    match raw.get("model"):
        case "blended":
            return BlendedPricing(
                Rate.parse(raw, bps_key="percent_bps"),
                {
                    brand: Rate.parse(r, bps_key="percent_bps")
                    for brand, r in dict(raw.get("brand_overrides") or {}).items()
                },
            )
        case "interchange_plus":
            return InterchangePlusPricing(
                Rate.parse(raw, bps_key="markup_bps", fixed_key="markup_fixed_minor")
            )
        case _:
            raise InvalidRequest("'{field}' is not supported.", field=("pricing", "model"))


@dataclass(frozen=True, slots=True)
class InterchangeTable:
    """One version of the interchange and scheme-fee tables (see settlement/interchange/)."""

    version: str
    interchange: Mapping[tuple[str, str, str], Rate]  # (brand, card_type, region)
    scheme_fees: Mapping[tuple[str, str], Rate]  # (brand, region)
    fallback_interchange: Rate
    fallback_scheme_fee: Rate

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> InterchangeTable:
        interchange: dict[tuple[str, str, str], Rate] = {}
        for row in doc["interchange"]:
            key = (row["brand"], row["card_type"], row["region"])
            invariant(key not in interchange, f"duplicate interchange row {key}")
            invariant(row["card_type"] in CARD_TYPES, f"unknown card type {row['card_type']}")
            invariant(row["region"] in REGIONS, f"unknown region {row['region']}")
            interchange[key] = Rate.parse(row)
        schemes: dict[tuple[str, str], Rate] = {}
        for row in doc["scheme_fees"]:
            skey = (row["brand"], row["region"])
            invariant(skey not in schemes, f"duplicate scheme fee row {skey}")
            schemes[skey] = Rate.parse(row)
        return InterchangeTable(
            version=str(doc["version"]),
            interchange=interchange,
            scheme_fees=schemes,
            fallback_interchange=Rate.parse(doc["fallback"]["interchange"]),
            fallback_scheme_fee=Rate.parse(doc["fallback"]["scheme_fee"]),
        )

    def interchange_rate(
        self, brand: str, card_type: str | None, region: str, currency: str
    ) -> tuple[Rate, bool]:
        """(rate, used_fallback). Unknown card type, a missing row or one not known in
        `currency` -> the most expensive row of the brand in the region that is known there
        (priced on a 100.00 reference amount), else the table fallback."""
        if card_type is not None:
            rate = self.interchange.get((brand, card_type, region))
            if rate is not None and rate.applies_to(currency):
                return rate, False
        candidates = [
            r
            for (b, _, reg), r in self.interchange.items()
            if b == brand and reg == region and r.applies_to(currency)
        ]
        if candidates:
            return max(candidates, key=lambda r: (r.exact(10_000, currency), r.bps)), True
        return self.fallback_interchange, True

    def scheme_fee_rate(self, brand: str, region: str, currency: str) -> tuple[Rate, bool]:
        rate = self.scheme_fees.get((brand, region))
        if rate is not None and rate.applies_to(currency):
            return rate, False
        return self.fallback_scheme_fee, True

    def rate_grid(self, brands: Iterable[str], currencies: Iterable[str]) -> RateGrid:
        """Every brand x card type x region x currency rate of the table with its fallbacks
        resolved, as the pricing statement applies them to a settlement's items (card type ''
        for a card whose BIN is not known)."""
        rates = []
        currencies = tuple(currencies)
        for brand in brands:
            for card_type in (*CARD_TYPES, None):
                for region in REGIONS:
                    for currency in currencies:
                        interchange, interchange_fallback = self.interchange_rate(
                            brand, card_type, region, currency
                        )
                        scheme_fee, scheme_fee_fallback = self.scheme_fee_rate(
                            brand, region, currency
                        )
                        rates.append(
                            BrandRegionRates(
                                brand,
                                region,
                                currency,
                                interchange,
                                interchange_fallback,
                                scheme_fee,
                                scheme_fee_fallback,
                                card_type or "",
                            )
                        )
        return RateGrid(
            tuple(rates), self.fallback_interchange, self.fallback_scheme_fee, currencies
        )


@dataclass(frozen=True, slots=True)
class BrandRegionRates:
    """The interchange and scheme-fee rates of one brand in one region for items in one
    currency; `*_fallback` says the rate is a fallback (the item gets flagged)."""

    brand: str
    region: str
    currency: str
    interchange: Rate
    interchange_fallback: bool
    scheme_fee: Rate
    scheme_fee_fallback: bool
    card_type: str = ""  # '' for a card whose BIN is not known


@dataclass(frozen=True, slots=True)
class RateGrid:
    """A table's rates for pricing in SQL: a brand outside `rates` is priced at the table's
    fallback rates, flagged."""

    rates: tuple[BrandRegionRates, ...]
    fallback_interchange: Rate
    fallback_scheme_fee: Rate
    currencies: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PricedItem:
    """Fee components of one item: exact values and their half-even rounding."""

    interchange_exact: Fraction
    scheme_fee_exact: Fraction
    markup_exact: Fraction
    flags: tuple[str, ...] = ()

    @property
    def interchange_minor(self) -> int:
        return round_half_even(self.interchange_exact)

    @property
    def scheme_fee_minor(self) -> int:
        return round_half_even(self.scheme_fee_exact)

    @property
    def markup_minor(self) -> int:
        return round_half_even(self.markup_exact)

    @property
    def commission_minor(self) -> int:
        """Everything the merchant pays for the item: interchange + scheme fee + markup."""
        return self.interchange_minor + self.scheme_fee_minor + self.markup_minor


NO_FEE = PricedItem(Fraction(0), Fraction(0), Fraction(0))


@dataclass(frozen=True, slots=True)
class FeeSplit:
    """What a settlement's fee totals charge the merchant and pay each platform account, each
    rounding done once (`FeeTotals.split`); the same names as FeeTotals' properties."""

    charged: int
    interchange_payable: int
    scheme_fee_payable: int
    markup_revenue: int

    @property
    def rounding_residual(self) -> int:
        return self.charged - (
            self.interchange_payable + self.scheme_fee_payable + self.markup_revenue
        )


@dataclass(slots=True)
class FeeTotals:
    """Sum of per-item fees of one merchant x currency, and what each platform account receives.

    The merchant is charged the sum of per-item rounded fees. Each platform account receives the
    half-even rounding of the exact sum of its component; the difference (the rounding residual,
    positive or negative) goes to the rounding account. charged == payables + residual, always.
    """

    interchange_exact: Fraction = Fraction(0)
    scheme_fee_exact: Fraction = Fraction(0)
    markup_exact: Fraction = Fraction(0)
    interchange_charged: int = 0
    scheme_fee_charged: int = 0
    markup_charged: int = 0

    def add(self, item: PricedItem) -> None:
        self.interchange_exact += item.interchange_exact
        self.scheme_fee_exact += item.scheme_fee_exact
        self.markup_exact += item.markup_exact
        self.interchange_charged += item.interchange_minor
        self.scheme_fee_charged += item.scheme_fee_minor
        self.markup_charged += item.markup_minor

    @property
    def charged(self) -> int:
        return self.interchange_charged + self.scheme_fee_charged + self.markup_charged

    @property
    def interchange_payable(self) -> int:
        return round_half_even(self.interchange_exact)

    @property
    def scheme_fee_payable(self) -> int:
        return round_half_even(self.scheme_fee_exact)

    @property
    def markup_revenue(self) -> int:
        return round_half_even(self.markup_exact)

    @property
    def rounding_residual(self) -> int:
        return self.charged - (
            self.interchange_payable + self.scheme_fee_payable + self.markup_revenue
        )

    def split(self) -> FeeSplit:
        """The totals as they stand, each exact sum rounded once."""
        return FeeSplit(
            self.charged, self.interchange_payable, self.scheme_fee_payable, self.markup_revenue
        )


def price_item(
    pricing: Pricing,
    table: InterchangeTable,
    *,
    kind: str,
    amount_minor: int,
    currency: str,
    brand: str,
    card_type: str | None,
    region: str,
) -> PricedItem:
    """Fees for one capture (refunds and other kinds: no fee). `amount_minor` is positive."""
    invariant(amount_minor >= 0, "item amounts are positive; the kind carries the sign")
    if kind != "capture":
        return NO_FEE
    match pricing:
        case BlendedPricing():
            return PricedItem(
                Fraction(0), Fraction(0), pricing.rate_for(brand).exact(amount_minor, currency)
            )
        case InterchangePlusPricing():
            ic, ic_fallback = table.interchange_rate(brand, card_type, region, currency)
            sf, sf_fallback = table.scheme_fee_rate(brand, region, currency)
            flags = tuple(
                f
                for f, on in (
                    (FLAG_INTERCHANGE_FALLBACK, ic_fallback),
                    (FLAG_SCHEME_FEE_FALLBACK, sf_fallback),
                )
                if on
            )
            return PricedItem(
                ic.exact(amount_minor, currency),
                sf.exact(amount_minor, currency),
                pricing.markup.exact(amount_minor, currency),
                flags,
            )
