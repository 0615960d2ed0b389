"""The database before there is a container: find or start it, migrate it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from clearport.db import migrate
from clearport.db.embedded import database_url_for

if TYPE_CHECKING:
    from clearport.config import Settings


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The configured database, or the embedded server started (and stopped) around the block."""
    with database_url_for(settings.database_url, settings.pgdata_dir) as url:
        yield url


def upgrade_database(url: str) -> None:
    migrate.upgrade(url)


def schema_head() -> str:
    return migrate.head_revision()


def is_migrated(url: str) -> bool:
    return migrate.is_migrated(url)
