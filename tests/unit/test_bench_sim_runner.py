"""bench.sim's parent process: a simulation process that dies before reporting its seeds fails
the run at once, rather than leaving CI waiting until its time limit (stop 26's sim-ci hang)."""

from __future__ import annotations

import multiprocessing
import sys

import pytest
from bench.sim.__main__ import _next_report


def _dies_without_reporting(code: int) -> None:
    sys.exit(code)


def _reports_once(queue: object) -> None:
    queue.put(("seed", 1, {}, [], 0.1))  # type: ignore[attr-defined]


def test_a_process_that_dies_unreported_fails_the_run() -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_dies_without_reporting, args=(3,))
    proc.start()
    with pytest.raises(SystemExit) as exited:
        _next_report(queue, [proc], poll_s=0.2)
    assert exited.value.code == 1
    assert proc.exitcode == 3


def test_reports_sent_before_a_process_ends_are_still_read() -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_reports_once, args=(queue,))
    proc.start()
    proc.join()
    assert _next_report(queue, [proc], poll_s=0.2) == ("seed", 1, {}, [], 0.1)
    with pytest.raises(SystemExit):
        _next_report(queue, [proc], poll_s=0.2)
