"""The operator console: server-rendered pages under `/console` over the same services the API
routes call (no business rule and no SQL of its own)."""
