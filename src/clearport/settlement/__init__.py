"""Nightly settlement: fees, reserves, netting, payouts, payout files and reports."""
