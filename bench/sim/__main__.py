"""Many seeds of the money simulation (`clearport simulate money`), spread over processes.

    .venv/bin/python -m bench.sim --seeds 1000            # seeds 1..1000
    .venv/bin/python -m bench.sim --ci                     # CI's 50: a fixed list + today's date

Each process migrates a template database once and clones one database per seed from it, on
DATABASE_URL's server (else an embedded one). Prints every violation with the command that
reproduces it, then seeds/s, steps, faults injected by kind and the number of violations; exits
1 if there is any. Every seed's database is cloned while
the others run, so the figure depends on the machine's load: say so with it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from queue import Empty
from typing import Any

from bench.sim import work

_POLL_S = 5.0

# A fixed list CI always runs: the seeds that found bugs (kept as regressions) and a spread.
CI_SEEDS = [5, 18, *(s for s in range(1, 50) if s not in (5, 18))][:49]


def ci_seeds() -> list[int]:
    today = int(datetime.now(UTC).strftime("%Y%m%d"))
    seeds = list(CI_SEEDS)
    print(f"CI seeds: the fixed list of {len(seeds)} and today's date {today}", flush=True)
    return [*seeds, today]


def _next_report(queue: Any, procs: list[Any], poll_s: float = _POLL_S) -> tuple[Any, ...]:
    """The next seed's report; exits 1, saying which, when a process died before sending all
    of its seeds' reports (killed, out of memory): waiting for them would hang until CI's
    time limit (a seed that raises ends its process, its traceback on stderr)."""
    while True:
        try:
            report: tuple[Any, ...] = queue.get(timeout=poll_s)
            return report
        except Empty:
            failed = [p for p in procs if p.exitcode not in (None, 0)]
            if failed or all(p.exitcode is not None for p in procs):
                for p in procs:
                    p.kill()
                codes = ", ".join(f"{p.name}: exit {p.exitcode}" for p in procs)
                print(f"a simulation process ended with seeds unreported ({codes})", flush=True)
                sys.exit(1)


def run(url: str, seeds: list[int], steps: int, workers: int, *, faults: bool = True) -> int:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    slices = [seeds[i::workers] for i in range(workers)]
    procs = [ctx.Process(target=work, args=(url, s, steps, faults, queue)) for s in slices if s]
    started = time.perf_counter()
    for p in procs:
        p.start()
    by_kind: Counter[str] = Counter()
    total_steps = 0
    seed_seconds = 0.0  # each seed's own time, without a process's start (imports, migrations)
    violations = 0
    for done in range(1, len(seeds) + 1):
        _, ran, injected, lines, seconds = _next_report(queue, procs)
        seed_seconds += seconds
        total_steps += ran
        by_kind.update(injected)
        violations += len(lines) - (1 if lines else 0)
        for line in lines:
            print(line, flush=True)
        if done % 10 == 0:
            rate = done / (time.perf_counter() - started)
            print(f"... {done} seeds, {rate:.2f} seeds/s, {violations} violations", flush=True)
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    if not faults:
        print(
            f"baseline, the first {len(seeds)} seeds without their faults: "
            f"{seed_seconds / len(seeds):.1f} s per seed ({total_steps} steps), "
            f"{violations} violations",
            flush=True,
        )
        return violations
    print(
        f"seeds: {len(seeds)} in {elapsed:.0f} s ({len(seeds) / elapsed:.2f} seeds/s, "
        f"{workers} processes)"
    )
    print(f"per seed: {seed_seconds / len(seeds):.1f} s (compare with the baseline)")
    print(f"steps: {total_steps}")
    print("faults injected by kind:")
    for kind, n in sorted(by_kind.items()):
        print(f"  {kind:36} {n}")
    print(f"{violations} violations")
    return violations


def measure(url: str, seeds: list[int], args: argparse.Namespace) -> int:
    """The baseline (the first seeds' workload without faults), then the run; violations."""
    found = 0
    if args.baseline:
        found += run(url, seeds[: args.baseline], args.steps, args.workers, faults=False)
    return found + run(url, seeds, args.steps, args.workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100, help="Run seeds 1..N.")
    parser.add_argument("--first", type=int, default=1, help="The first seed.")
    parser.add_argument("--steps", type=int, default=15, help="Steps per seed.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ci", action="store_true", help="CI's fixed list and today's date.")
    parser.add_argument(
        "--baseline", type=int, default=10, help="Seeds run first without faults (0: none)."
    )
    args = parser.parse_args()
    seeds = ci_seeds() if args.ci else list(range(args.first, args.first + args.seeds))
    url = os.environ.get("DATABASE_URL")
    if url:
        sys.exit(1 if measure(url, seeds, args) else 0)
    import tempfile

    import pgserver

    server = pgserver.get_server(tempfile.mkdtemp(prefix="clearport-sim-pg-"), cleanup_mode="stop")
    try:
        found = measure(server.get_uri("postgres"), seeds, args)
    finally:
        server.cleanup()
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
