"""The kernel every feature shares: errors, ids, money, clock, pagination, redaction,
sensitive values and the unit-of-work port. Standard library only."""
