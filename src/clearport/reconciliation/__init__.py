"""Reconciliation: processor settlement files imported by COPY, matched in set-based SQL against
captures, refunds and disputes, and the exception queue finance works through."""
