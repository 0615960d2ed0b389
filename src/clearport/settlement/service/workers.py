"""Up to N pieces of a run's work at once in one process (decision 0914): each piece is a
transaction on a connection of its own, so the server's backends work in parallel while this
process's one thread prepares the next statement or nets the last partition's settlements."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence


async def in_parallel(
    workers: int, pieces: Sequence[int], work: Callable[[int], Awaitable[object]]
) -> None:
    """`work(piece)` for every piece, at most `workers` at once, in order of the pieces. The
    first failure cancels the others (each rolls its transaction back) and is raised."""
    if workers <= 1 or len(pieces) <= 1:
        for piece in pieces:
            await work(piece)
        return
    todo = iter(pieces)

    async def worker() -> None:
        # One iterator shared by the workers: taking the next piece never awaits, so no piece
        # is taken twice.
        for piece in todo:
            await work(piece)

    tasks = [asyncio.create_task(worker()) for _ in range(min(workers, len(pieces)))]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
