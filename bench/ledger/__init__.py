"""Ledger benchmark: hot-account batch posting vs pgbench TPC-B on the same server."""
