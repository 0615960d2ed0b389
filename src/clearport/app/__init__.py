"""Use cases: load, decide in the domain, write everything in one transaction."""
