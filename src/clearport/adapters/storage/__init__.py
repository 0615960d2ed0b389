"""Object storage adapters (the `ObjectStorage` port)."""
