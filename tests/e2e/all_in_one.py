"""`clearport run` in its own process, as `make run` starts it: what it printed, and its stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

EXPORT = re.compile(r"export OK=(\S+) SK=(\S+) MER=(\S+)")
START_TIMEOUT_S = 120


@dataclass
class Running:
    proc: subprocess.Popen[str]
    url: str
    printed: list[str] = field(default_factory=list)

    @property
    def exports(self) -> dict[str, str]:
        """OK, SK and MER as the `export` line it printed gives them."""
        for line in self.printed:
            if found := EXPORT.search(line):
                return dict(zip(("OK", "SK", "MER"), found.groups(), strict=True))
        raise AssertionError(f"no export line in {self.printed}")


def run_env(data_dir: Path, database_url: str) -> dict[str, str]:
    env = {**os.environ, "CLEARPORT_DATA_DIR": str(data_dir), "DATABASE_URL": database_url}
    env.pop("CLEARPORT_SECRET_KEY", None)  # as a newcomer runs it: generated into data_dir
    env["CLEARPORT_LOG_LEVEL"] = "WARNING"
    return env


def run_clearport(
    port: int, env: dict[str, str], cwd: Path, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """`clearport run` that is expected to end by itself (a refused start)."""
    return subprocess.run(
        [sys.executable, "-m", "clearport.cli", "run", "--port", str(port)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@contextmanager
def clearport_run(port: int, env: dict[str, str], cwd: Path) -> Iterator[Running]:
    """`clearport run --port PORT`, once it printed its keys and /healthz answers; stopped
    with SIGTERM (as Ctrl-C would) afterwards, its worker with it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "clearport.cli", "run", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    running = Running(proc, f"http://127.0.0.1:{port}")
    # Drained all along, so the server never blocks on a full pipe.
    reader = threading.Thread(target=_drain, args=(proc, running.printed), daemon=True)
    reader.start()
    try:
        _wait_started(running)
        yield running
    finally:
        _stop(proc)
        reader.join(timeout=10)


def _drain(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))


def _wait_started(running: Running) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if running.proc.poll() is not None:
            raise AssertionError(f"clearport run ended: {running.printed}")
        if any(EXPORT.search(line) for line in list(running.printed)):
            try:
                if httpx.get(f"{running.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"clearport run did not start: {running.printed}")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
