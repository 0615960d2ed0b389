"""Deterministic fault-injection simulation of the money path (`clearport simulate money`).

One seed fixes the schedule (`schedule.py`): the workload, the clock's moves and every fault.
`run_seed` drives the real API and services (`world.py`, `runner.py`) against a database of the
run's own (`store.py`), checks the ledger after every step and everything at the end
(`ending.py`). A violation names the seed, the step, the invariant and the command that
reproduces it; `shrink` finds the shortest failing prefix of the schedule.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from clearport.config import Settings
from clearport.simulation.database import (
    SimulationStore,
    create_database,
    drop_database,
    install_faults,
    server_url,
)
from clearport.simulation.ending import check_end, heal
from clearport.simulation.runner import RunReport, Simulation, Violation
from clearport.simulation.schedule import schedule
from clearport.simulation.world import World, simulation_settings

__all__ = [
    "RunReport",
    "Violation",
    "dispose_database",
    "prepare_database",
    "reproduce",
    "run_seed",
    "shrink",
]


def reproduce(seed: int, steps: int) -> str:
    return f"clearport simulate money --seed {seed} --steps {steps}"


async def prepare_database(url: str) -> str:
    """A migrated database of this process's, with the fault switch and the reset, on `url`'s
    server; its name."""
    from clearport.wiring import upgrade_database

    name = f"clearport_sim_{os.getpid()}"
    await create_database(server_url(url, "postgres"), name)
    migrated = server_url(url, name)
    upgrade_database(migrated)
    await install_faults(migrated)
    return name


async def dispose_database(url: str, name: str) -> None:
    await drop_database(server_url(url, "postgres"), name)


async def run_seed(
    base: Settings, url: str, database: str, seed: int, steps: int, *, faults: bool = True
) -> RunReport:
    """Run seed `seed` for `steps` steps in `database` (prepared by `prepare_database`), put back
    as migrated first; the report."""
    run_url = server_url(url, database)
    data_dir = Path(tempfile.mkdtemp(prefix=f"clearport-sim-{seed}-"))
    store = await SimulationStore.connect(run_url)
    await store.reset()
    world = await World.open(simulation_settings(base, data_dir), run_url)
    sim = Simulation(world, store, seed)
    try:
        await world.setup()
        for step in schedule(seed, steps, faults=faults):
            await sim.run_step(step)
            for problem in await store.ledger_imbalances():
                sim.violation(
                    "every journal sums to zero; every balance equals its postings", problem
                )
            if sim.report.violations:
                break
        sim.report.steps = steps if not sim.report.violations else sim.report.steps
        if not sim.report.violations:
            await heal(sim)
            await check_end(sim)
    except Exception as exc:
        sim.violation("the run completes", repr(exc))
    finally:
        await world.close()
        await store.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    return sim.report


async def shrink(base: Settings, url: str, database: str, seed: int, steps: int) -> int:
    """The fewest steps of seed `seed` that still fail (bisecting the prefix length)."""
    low, high = 0, steps  # `high` fails; find the smallest that does
    while high - low > 1:
        middle = (low + high) // 2
        if (await run_seed(base, url, database, seed, middle)).violations:
            high = middle
        else:
            low = middle
    return high
