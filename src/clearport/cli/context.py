"""What every `clearport` command that touches the database does first: find the database
(the configured one or the embedded server), refuse an un-migrated one, build the container."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer
from rich.console import Console

from clearport.access.domain import Origin
from clearport.config import Settings
from clearport.wiring import Container, build_container, database_url, is_migrated

T = TypeVar("T")
CLI_ORIGIN = Origin("local")
console = Console(stderr=True)


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    with database_url(settings) as url:
        yield url


def with_container(settings: Settings, url: str, work: Callable[[Container], Awaitable[T]]) -> T:
    async def main() -> T:
        container = build_container(settings, url)
        await container.start()
        try:
            return await work(container)
        finally:
            await container.stop()

    return asyncio.run(main())


def require_migrated(url: str) -> None:
    if not is_migrated(url):
        console.print("[red]The database is not migrated: run `clearport db upgrade`.[/red]")
        raise typer.Exit(2)


def in_migrated_container(settings: Settings, work: Callable[[Container], Awaitable[T]]) -> T:
    """Run `work` against a container on the migrated database (exit 2 if it is not)."""
    with database(settings) as url:
        require_migrated(url)
        return with_container(settings, url, work)
