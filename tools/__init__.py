"""Development tooling run by `make check` (not part of the installed package)."""
