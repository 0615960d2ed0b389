"""Settlement in PostgreSQL: set-based statements over the ledger's capture and refund transfers.

A run claims and stages its eligible sources in one pass (`settlement_claims`, the UNLOGGED
`settlement_sources`), then each partition (a hash bucket of merchants) prices, inserts, sums and
reports its items with ONE statement (items.py) whose output is the report's CSV. Items never
travel through Python (decision 0900).

One module per part of the service, the same seams as settlement/service/: runs (with staging),
pricing (with items), payouts, reports, queries. The parts hold no state, so the store is
simply all of them.
"""

from __future__ import annotations

from clearport.settlement.store.items import PgItemStore
from clearport.settlement.store.payouts import PgPayoutStore
from clearport.settlement.store.pricing import PgPricingStore
from clearport.settlement.store.queries import PgQueryStore
from clearport.settlement.store.reports import PgReportStore
from clearport.settlement.store.runs import PgRunStore
from clearport.settlement.store.staging import PgStagingStore


class PgSettlementStore(
    PgRunStore,
    PgStagingStore,
    PgPricingStore,
    PgItemStore,
    PgPayoutStore,
    PgReportStore,
    PgQueryStore,
):
    """The settlement store that wiring hands to the service (ports.SettlementStore)."""


__all__ = ["PgSettlementStore"]
