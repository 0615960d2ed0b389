"""This process's copy of each merchant's gate (status, payment settings, MCC) for the
authorization path (decision 0910): read once per TTL instead of on every payment, and dropped
from every process when the merchant changes (`CacheTopic.MERCHANT`, published by
`MerchantService` in the transaction that changes it), so a suspended merchant's next payment is
refused by every process within the announcement's delivery."""

from __future__ import annotations

from clearport.core.cache import BoundedTtlCache
from clearport.core.uow import Transaction
from clearport.merchants.domain import MerchantGate
from clearport.merchants.ports import MerchantGates


class CachedMerchantGates:
    def __init__(self, source: MerchantGates, *, max_entries: int, ttl_s: float) -> None:
        self._source = source
        self.cache: BoundedTtlCache[str, MerchantGate] = BoundedTtlCache(
            max_entries=max_entries, ttl_s=ttl_s
        )

    async def merchant_gate(self, tx: Transaction, merchant_id: str) -> MerchantGate | None:
        cached = self.cache.get(merchant_id)
        if cached is not None:
            return cached
        generation = self.cache.generation()
        gate = await self._source.merchant_gate(tx, merchant_id)
        if gate is not None:  # an unknown merchant is not cached: it may be created next
            self.cache.put(merchant_id, gate, tag=merchant_id, generation=generation)
        return gate
