"""The money simulation over many seeds (see __main__.py)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any


def work(url: str, seeds: list[int], steps: int, faults: bool, queue: Any) -> None:
    """Run `seeds` in this process, each report onto `queue`; stop if the parent is gone."""
    from clearport.config import load_settings
    from clearport.logs import configure_logging
    from clearport.simulation import dispose_database, prepare_database, reproduce, run_seed

    configure_logging("CRITICAL", "console")
    parent = os.getppid()

    async def main() -> None:
        database = await prepare_database(url)
        try:
            for seed in seeds:
                if os.getppid() != parent:
                    return  # the bench was stopped: no orphan keeps the machine busy
                started = time.perf_counter()
                report = await run_seed(load_settings(), url, database, seed, steps, faults=faults)
                lines = [v.line() for v in report.violations]
                if lines:
                    lines.append(f"reproduce: {reproduce(seed, report.steps)}")
                seconds = time.perf_counter() - started
                queue.put((seed, report.steps, dict(report.faults), lines, seconds))
        finally:
            await dispose_database(url, database)

    asyncio.run(main())
