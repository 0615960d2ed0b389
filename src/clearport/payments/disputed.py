"""What a dispute does to its payment, for the disputes feature (above payments), inside the
dispute's transaction: the payment read and locked, and what chargebacks took recorded on it."""

from __future__ import annotations

from clearport.core.clock import Clock
from clearport.core.errors import InvalidState
from clearport.core.uow import Transaction
from clearport.payments.domain import Payment, PaymentStatus
from clearport.payments.ports import PaymentStore

# A payment whose money was captured (some of it may be refunded since).
DISPUTABLE_STATUSES = frozenset({PaymentStatus.CAPTURED, PaymentStatus.REFUNDED})


class DisputedPayments:
    def __init__(self, store: PaymentStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def lock(self, tx: Transaction, payment_id: str) -> Payment | None:
        """The payment, locked until the transaction ends (a refund of it waits)."""
        return await self._store.get_payment(tx, payment_id, for_update=True)

    def require_captured(self, payment: Payment) -> None:
        if payment.status not in DISPUTABLE_STATUSES or payment.amount_captured == 0:
            raise InvalidState(
                f"This payment's status is '{payment.status}': only a captured payment can be "
                "disputed.",
                field="payment",
            )

    async def record(self, tx: Transaction, payment: Payment, taken_minor: int) -> None:
        """A chargeback took `taken_minor` of the locked `payment` (negative: gave it back)."""
        payment.record_dispute(taken_minor, self._clock.now())
        await self._store.update_payment(tx, payment)
