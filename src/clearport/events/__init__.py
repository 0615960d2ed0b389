"""Events: what happened to a merchant's objects, written in the same transaction (the outbox)."""
