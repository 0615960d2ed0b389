"""What every `clearport` command does first.

All of them: load the settings and log in the one format their kind of command uses (decision
0010). Those that touch the database: find it (the configured one or the embedded server),
refuse an un-migrated one, build the container.

`wiring`, and through it the stores and adapters, is imported inside these functions, never at
the top, so that `clearport --help` does not load it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn, TypeVar

import typer
from rich.console import Console

from clearport.access.domain import Origin
from clearport.core.errors import ClearportError

if TYPE_CHECKING:
    from clearport.config import Settings
    from clearport.wiring import Container

T = TypeVar("T")
CLI_ORIGIN = Origin("local")
console = Console(stderr=True)


def start_command() -> Settings:
    """The settings of a command an operator runs and reads at a terminal: console logs."""
    return _start(service=False)


def start_service() -> Settings:
    """The settings of a long-running process (`serve`, `run`, `worker`): logs in
    CLEARPORT_LOG_FORMAT, for whatever collects them."""
    return _start(service=True)


def _start(*, service: bool) -> Settings:
    from clearport.config import load_settings
    from clearport.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format if service else "console")
    return settings


def fail(exc: ClearportError) -> NoReturn:
    console.print(f"[red]{exc.message}[/red]")
    raise typer.Exit(1)


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    from clearport.wiring import database_url

    with database_url(settings) as url:
        yield url


def with_container(
    settings: Settings,
    url: str,
    work: Callable[[Container], Awaitable[T]],
    *,
    listen: bool = False,
) -> T:
    """Run `work` against a started container; `listen` for a long-running process, whose
    caches must hear of other processes' changes (decision 0019)."""
    from clearport.wiring import build_container

    async def main() -> T:
        container = build_container(settings, url)
        await container.start(listen=listen)
        try:
            return await work(container)
        finally:
            await container.stop()

    return asyncio.run(main())


def require_migrated(url: str) -> None:
    from clearport.wiring import is_migrated

    if not is_migrated(url):
        console.print("[red]The database is not migrated: run `clearport db upgrade`.[/red]")
        raise typer.Exit(2)


def in_migrated_container(
    settings: Settings, work: Callable[[Container], Awaitable[T]], *, listen: bool = False
) -> T:
    """Run `work` against a container on the migrated database (exit 2 if it is not)."""
    with database(settings) as url:
        require_migrated(url)
        return with_container(settings, url, work, listen=listen)


def in_migrated_container_or_fail(
    settings: Settings, work: Callable[[Container], Awaitable[T]]
) -> T:
    """`in_migrated_container`; a ClearportError ends the command with its message (exit 1)."""
    try:
        return in_migrated_container(settings, work)
    except ClearportError as exc:
        fail(exc)
