"""Alembic, driven from code: `clearport db upgrade` and the "is it migrated?" check.

Alembic and SQLAlchemy are imported by the functions that use them, so importing `wiring` (as
`clearport keys split` does) does not load them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).parent / "migrations"
_STORED_SQL = Path(__file__).parent / "sql"


def stored_sql(name: str) -> str:
    """A versioned stored-function file from `db/sql` (`ledger_post.v1`), for a migration to load.

    A stored function changes by a new file (`ledger_post.v2.sql`) and a new migration that
    loads it, so the change reads as a diff and old migrations never change."""
    return (_STORED_SQL / f"{name}.sql").read_text(encoding="utf-8")


def sqlalchemy_url(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def _config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(_config(database_url), revision)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config("postgresql://localhost/x")).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


def current_revision(database_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def is_migrated(database_url: str) -> bool:
    return current_revision(database_url) == head_revision()
