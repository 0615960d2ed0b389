"""Pure business logic: standard library only, no I/O."""
