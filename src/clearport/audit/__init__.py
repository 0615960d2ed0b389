"""The append-only, hash-chained audit trail (PCI DSS 10.2)."""
