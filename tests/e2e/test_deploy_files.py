"""The deployment files: the Dockerfile, compose.yaml and deploy/k8s lint clean, and every
command compose.yaml gives the Clearport image runs here as it would in its container (against
the test database and moto instead of the `postgres` and `moto` services). Building the image
itself is `make image` (tools/image.sh), which CI runs."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support import Api, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
OURS = [name for name, svc in COMPOSE["services"].items() if "build" in svc]


def test_the_dockerfile_compose_file_and_manifests_lint_clean() -> None:
    for command in (
        [BIN / "hadolint", ROOT / "Dockerfile"],
        [
            BIN / "check-jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            ROOT / "compose.yaml",
        ],
        [BIN / "kubernetes-validate", "--strict", *sorted((ROOT / "deploy/k8s").glob("*.yaml"))],
    ):
        out = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr


def test_compose_starts_what_the_issue_lists_in_order() -> None:
    services = COMPOSE["services"]
    assert set(OURS) == {"migrate", "aws-setup", "api", "worker", "simulator-http",
                         "simulator-iso8583"}  # fmt: skip
    assert {"postgres", "moto"} <= services.keys()
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    # One image for every process, the command picking which.
    assert len({services[n]["image"] for n in OURS}) == 1


def _environment(service: str, moto_url: str, database_url: str, data_dir: Path) -> dict[str, str]:
    env = {**os.environ}
    for name, value in COMPOSE["services"][service]["environment"].items():
        value = str(value).replace("http://moto:5000", moto_url)
        env[name] = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)  # compose's defaults
    env["DATABASE_URL"] = database_url
    env["CLEARPORT_DATA_DIR"] = str(data_dir)
    return env


def _command(service: str, port: int | None = None) -> list[str]:
    args = [str(a) for a in COMPOSE["services"][service]["command"]]
    if port is not None:
        args = [str(port) if a in ("8000", "9100", "9200") else a for a in args]
    return [str(BIN / "clearport"), *args]


def _healthcheck(service: str, data_dir: Path, port: int) -> list[str]:
    """The service's healthcheck as compose gives it, or the image's HEALTHCHECK."""
    test = COMPOSE["services"][service].get("healthcheck", {}).get("test")
    if test is None:
        dockerfile = (ROOT / "Dockerfile").read_text()
        found = re.search(r"HEALTHCHECK[^\n]*\n\s*CMD (\[.*\])", dockerfile)
        assert found is not None
        test = ["CMD", *yaml.safe_load(found.group(1))]
    assert test[0] == "CMD"
    return [
        a.replace("/var/lib/clearport", str(data_dir)).replace(":8000/", f":{port}/")
        for a in test[1:]
    ]


@pytest.fixture
def compose_env(api: Api, moto_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    yield {"moto_url": moto_url, "database_url": api.database_url, "data_dir": tmp_path}


@pytest.mark.parametrize("service", OURS)
def test_each_compose_command_runs(service: str, compose_env: dict[str, Any]) -> None:
    data_dir: Path = compose_env["data_dir"]
    env = _environment(service, compose_env["moto_url"], compose_env["database_url"], data_dir)
    command = _command(service)
    probe = subprocess.run([*command[:2], "--help"], env=env, capture_output=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"`clearport {command[1]}` is not a command of this build yet")
    if service in ("migrate", "aws-setup"):  # run once, to completion
        for _ in range(2):  # and again: both are safe to repeat
            out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stdout + out.stderr
        return
    port = free_port()
    with (data_dir / "out.log").open("wb") as log:
        proc = subprocess.Popen(_command(service, port), env=env, stdout=log, stderr=log)
    try:
        ready = _wait(service, port, data_dir, proc)
        assert ready, (data_dir / "out.log").read_text()[-3000:]
        if service in ("api", "worker"):
            check = subprocess.run(_healthcheck(service, data_dir, port), timeout=30)
            assert check.returncode == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _wait(service: str, port: int, data_dir: Path, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if service == "worker":
            if (data_dir / "worker.alive").exists():
                return True
        else:
            try:
                if service == "api":
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                        return True
                else:  # a simulator: it listens
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    return True
            except (httpx.HTTPError, OSError):
                pass
        time.sleep(0.2)
    return False
