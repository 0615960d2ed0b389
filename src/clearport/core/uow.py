"""The unit of work and the transaction it hands out: opaque to use cases, PostgreSQL in `db`."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Transaction(Protocol):
    """An open database transaction; opaque to the use cases."""


class UnitOfWork(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...

    def autocommit(self) -> AbstractAsyncContextManager[Transaction]:
        """Statements commit one by one: for a single read or a single-statement write."""
        ...
