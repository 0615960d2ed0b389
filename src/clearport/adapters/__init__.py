"""I/O adapters: PostgreSQL, crypto, connectors, storage."""
