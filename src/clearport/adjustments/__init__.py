"""Adjustments: finance corrects a merchant's balance by a balanced ledger entry."""
