"""Settlement in PostgreSQL: set-based statements over the ledger's capture and refund transfers.

A run stages its eligible sources in one pass (`settlement_sources`), then each partition (a hash
bucket of merchants) prices and inserts its items with ONE INSERT ... SELECT that also returns the
per-settlement aggregates. Items never travel through Python except for reports, which PostgreSQL
streams as CSV.

One module per part of the service, the same seams as settlement/service/: runs, pricing,
payouts, reports, queries. The parts hold no state, so the store is simply all of them.
"""

from __future__ import annotations

from clearport.settlement.store.payouts import PgPayoutStore
from clearport.settlement.store.pricing import PgPricingStore
from clearport.settlement.store.queries import PgQueryStore
from clearport.settlement.store.reports import PgReportStore
from clearport.settlement.store.runs import PgRunStore


class PgSettlementStore(PgRunStore, PgPricingStore, PgPayoutStore, PgReportStore, PgQueryStore):
    """The settlement store that wiring hands to the service (ports.SettlementStore)."""


__all__ = ["PgSettlementStore"]
