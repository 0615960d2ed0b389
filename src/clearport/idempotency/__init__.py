"""One idempotency mechanism for every POST."""
