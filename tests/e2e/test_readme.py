"""The README's commands, run as a newcomer runs them, so the README cannot drift from the CLI:
the walkthrough's curl and clearport lines in order against `clearport run`, and every command
of the Commands table at least parses (its `--help`, and every option the table names).

The walkthrough is run as written but for the port (a free one instead of 8000) and for the two
`export X=prefix_...` lines, which the reader fills from the previous answer: the test takes the
first id with that prefix from it. Each curl's HTTP status is read with `-w` and must be 2xx.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from clearport.cli.main import app
from tests.e2e.all_in_one import clearport_run, run_env
from tests.e2e.test_cli import empty_database  # noqa: F401 - the fixture
from tests.support import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
README_PORT = "127.0.0.1:8000"
PLACEHOLDER = re.compile(r"^export ([A-Z]+)=([a-z]+)_\.\.\.\s*(#.*)?$")
CURL_STATUS = "curl -w '\\n%{http_code}' "  # the HTTP status on a last line of its own


def _section(title: str) -> str:
    """From `title` to the next level-2 heading (shell comments in code blocks start with
    one `#`)."""
    start = README.index(title)
    end = README.find("\n## ", start + len(title))
    return README[start : end if end != -1 else None]


def walkthrough_commands() -> list[str]:
    """The shell commands of the walkthrough's code blocks, one per command, as written
    (continuation lines and quoted newlines included); comment lines dropped."""
    blocks = re.findall(r"```sh\n(.*?)```", _section("### A first payment, end to end"), re.S)
    commands: list[str] = []
    pending = ""
    for line in "\n".join(blocks).splitlines():
        pending = f"{pending}\n{line}" if pending else line
        if pending.endswith("\\"):
            continue
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        if words:
            commands.append(pending)
        pending = ""
    assert not pending, f"unfinished command in the README: {pending!r}"
    return commands


def table_commands() -> list[str]:
    """Every command of the Commands table: each code span of its first column, `clearport`
    added to the short forms (`keys combine --parts N`)."""
    table = _section("## Commands")
    spans: list[str] = []
    for row in table.splitlines():
        if not row.startswith("| `"):
            continue
        first_column = re.split(r"(?<!\\)\|", row)[1]
        for span in re.findall(r"`([^`]+)`", first_column):
            span = span.replace("\\|", "|")
            spans.append(span if span.startswith("clearport ") else f"clearport {span}")
    return spans


def _resolve(words: list[str]) -> tuple[list[str], Any]:
    """The command path at the start of `words` (after `clearport`) and its (click) command;
    a group has `commands`."""
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    for word in words[1:]:
        if word not in getattr(command, "commands", {}):
            break
        command = command.commands[word]
        path.append(word)
    return path, command


def _example(word: str) -> str:
    """A value for a documented placeholder: the first of `a|b`, `x` for `…`, 2 for a count."""
    word = word.split("|", maxsplit=1)[0].replace("…", "x")
    return "2" if word in ("N", "S") else word


def _run(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _ids(value: Any) -> Iterator[str]:
    """Every "id" in a JSON answer, depth first."""
    if isinstance(value, dict):
        if isinstance(value.get("id"), str):
            yield value["id"]
        for item in value.values():
            yield from _ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from _ids(item)


def test_the_readme_has_commands_to_test() -> None:
    commands = walkthrough_commands()
    assert sum(c.startswith("curl ") for c in commands) == 16
    assert any(c.startswith("curl -s http://127.0.0.1:8000/v1/disputes") for c in commands)
    assert any(c.startswith(".venv/bin/clearport payouts mark") for c in commands)
    assert len(table_commands()) >= 18
    # A body says it is JSON: the API refuses any other media type (415).
    for command in commands:
        if " -d " in command:
            assert "Content-Type: application/json" in command or "--json" in command, command


@pytest.mark.parametrize("documented", table_commands())
def test_every_command_of_the_table_parses(documented: str) -> None:
    words = documented.split()
    path, command = _resolve(words)
    assert path and not hasattr(command, "commands"), f"{documented}: no such command"
    declared = {opt for param in command.params for opt in getattr(param, "opts", [])}
    declared |= {opt for param in command.params for opt in getattr(param, "secondary_opts", [])}
    named = set(re.findall(r"--[a-z][a-z-]*", documented))
    assert named <= declared, f"{documented}: {sorted(named - declared)} not options"
    # The documented form itself parses: its required part, placeholders filled in.
    required = [_example(word) for word in re.sub(r"\[[^\]]*\]", "", documented).split()]
    command.make_context(f"clearport {' '.join(path)}", required[1 + len(path) :])
    helped = subprocess.run(
        [sys.executable, "-m", "clearport.cli", *path, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert helped.returncode == 0, helped.stderr
    assert f"Usage: clearport {' '.join(path)}" in helped.stdout


def test_the_walkthrough_runs_against_clearport_run(
    empty_database: str,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    # As the README's reader: in a checkout (for `.venv/bin/clearport`), with the default data
    # directory `./.clearport`, and `clearport run` going in another terminal.
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = run_env(tmp_path / ".clearport", empty_database)
    env.pop("CLEARPORT_DATA_DIR")
    port = free_port()
    with clearport_run(port, env, tmp_path) as running:
        shell = {**env, **running.exports}
        previous: Any = None
        for command in walkthrough_commands():
            if placeholder := PLACEHOLDER.match(command):
                name, prefix = placeholder.group(1, 2)
                found = [i for i in _ids(previous) if i.startswith(f"{prefix}_")]
                assert found, f"{command}: no {prefix}_ id in {previous}"
                shell[name] = found[0]
                continue
            command = command.replace(README_PORT, f"127.0.0.1:{port}")
            is_curl = command.startswith("curl ")
            done = _run(command.replace("curl ", CURL_STATUS, 1), shell, tmp_path)
            assert done.returncode == 0, (command, done.stdout, done.stderr)
            if is_curl:
                body, _, status = done.stdout.rpartition("\n")
                assert status.startswith("2"), (command, status, body)
                previous = json.loads(body)
            else:  # a command says what it did, or writes a file the next one reads
                assert done.stdout.strip() or " > " in command, (command, done.stderr)
                previous = None
        assert running.proc.poll() is None  # the server is still up
    marked = [c for c in walkthrough_commands() if "payouts mark" in c]
    assert marked and os.path.isdir(tmp_path / ".clearport" / "objects" / "payouts")
