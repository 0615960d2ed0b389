"""Alembic, driven from code: `clearport db upgrade` and the "is it migrated?" check.

Alembic and SQLAlchemy are imported by the functions that use them, so importing `wiring` (as
`clearport keys split` does) does not load them. The check every command makes before it starts
(`is_migrated`) and `/readyz`'s expected head need neither: they read the migration files'
`revision`/`down_revision` assignments and the `alembic_version` row directly, because loading
alembic's script directory took 1-2.7 s of every command's start (`clearport reconcile`'s fixed
cost, issue 16). A test checks the two answers agree.
"""

from __future__ import annotations

import ast
import asyncio
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


def _revisions() -> dict[str, tuple[str, ...]]:
    """Each migration's revision and the revisions it follows, from its module's assignments."""
    revisions: dict[str, tuple[str, ...]] = {}
    for path in sorted((_MIGRATIONS / "versions").glob("*.py")):
        names: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                    names[target.id] = ast.literal_eval(node.value)
        revision, down = names.get("revision"), names.get("down_revision")
        if not isinstance(revision, str):
            raise RuntimeError(f"{path.name} names no revision")
        if isinstance(down, str):
            revisions[revision] = (down,)
        elif isinstance(down, tuple | list):  # a merge of several
            revisions[revision] = tuple(str(d) for d in down)
        else:
            revisions[revision] = ()
    return revisions


def head_revision() -> str:
    """The migration this code expects the database at: the one no other follows."""
    revisions = _revisions()
    heads = sorted(set(revisions) - {d for follows in revisions.values() for d in follows})
    if len(heads) != 1:
        raise RuntimeError(f"the migrations must have one head, not {heads or 'none'}")
    return heads[0]


async def _current_revision(database_url: str) -> str | None:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        if await conn.fetchval("SELECT to_regclass('alembic_version')") is None:
            return None
        found = await conn.fetchval("SELECT max(version_num) FROM alembic_version")
        return None if found is None else str(found)
    finally:
        await conn.close()


def current_revision(database_url: str) -> str | None:
    """The revision the database is at (None before the first upgrade). Sync, for the CLI's
    check before its event loop starts."""
    return asyncio.run(_current_revision(database_url))


def is_migrated(database_url: str) -> bool:
    return current_revision(database_url) == head_revision()
