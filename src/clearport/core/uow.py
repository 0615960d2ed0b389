"""The unit of work and the transaction it hands out: opaque to use cases, PostgreSQL in `db`.

`FakeUnitOfWork` is the in-memory one for the fast test tier: the fakes it is given are
snapshotted when a transaction opens and restored when it fails, so a use case that raises leaves
them exactly as they were, as a rolled-back transaction leaves the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from clearport.core.errors import invariant


class Transaction(Protocol):
    """An open database transaction; opaque to the use cases."""


class UnitOfWork(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...

    def autocommit(self) -> AbstractAsyncContextManager[Transaction]:
        """Statements commit one by one: for a single read or a single-statement write."""
        ...

    def snapshot(self) -> AbstractAsyncContextManager[Transaction]:
        """A read-only transaction whose reads all see one moment (repeatable read): for reads
        that must agree with each other, such as balances beside what settlement carries."""
        ...


class Snapshottable(Protocol):
    """An in-memory fake whose state a `FakeUnitOfWork` can take back."""

    def snapshot(self) -> object: ...
    def restore(self, snapshot: object) -> None: ...


class FakeTransaction:
    """The transaction a `FakeUnitOfWork` hands out: it only says which one is open."""

    def __init__(self, number: int, *, autocommit: bool) -> None:
        self.number = number
        self.autocommit = autocommit


class FakeUnitOfWork:
    """Transactions over in-memory fakes, one at a time (serializable, like the row locks the
    real stores take), rolled back on an exception. Autocommit blocks are not rolled back: each
    statement in them has committed on its own.

    `open` counts the blocks in progress, so a test can prove that nothing holds a transaction
    while a connector is being called."""

    def __init__(self, *participants: Snapshottable) -> None:
        self._participants: list[Snapshottable] = list(participants)
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None
        self.open = 0
        self.commits = 0
        self.rollbacks = 0

    def enlist(self, *participants: Snapshottable) -> None:
        self._participants.extend(participants)

    @asynccontextmanager
    async def _block(self, *, autocommit: bool) -> AsyncIterator[Transaction]:
        task = asyncio.current_task()
        # One connection per block in the real thing; here a nested block would wait forever.
        invariant(task is None or task is not self._holder, "a transaction inside a transaction")
        async with self._lock:
            self._holder = task
            self.open += 1
            snapshots = [] if autocommit else [(p, p.snapshot()) for p in self._participants]
            try:
                yield FakeTransaction(self.commits + self.rollbacks + 1, autocommit=autocommit)
            except BaseException:
                for participant, snapshot in snapshots:
                    participant.restore(snapshot)
                self.rollbacks += 1
                raise
            else:
                self.commits += 1
            finally:
                self.open -= 1
                self._holder = None

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        return self._block(autocommit=False)

    def autocommit(self) -> AbstractAsyncContextManager[Transaction]:
        return self._block(autocommit=True)

    def snapshot(self) -> AbstractAsyncContextManager[Transaction]:
        return self._block(autocommit=False)
