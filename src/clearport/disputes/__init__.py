"""Disputes: chargebacks and inquiries, their evidence, their money (decision 0700)."""
