"""`make check`: the migrations form one line (exactly one alembic head).

Two lines of work that each add a migration on the same parent leave two heads; the later one
rebases its `down_revision` onto the other's revision before it lands.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

import clearport.db

MIGRATIONS = Path(clearport.db.__file__).parent / "migrations"


def main() -> int:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    heads = ScriptDirectory.from_config(config).get_heads()
    if len(heads) != 1:
        print(
            f"alembic: {len(heads)} heads ({', '.join(sorted(heads)) or 'none'}); "
            "rebase the later migration's down_revision so there is exactly one.",
            file=sys.stderr,
        )
        return 1
    print(f"alembic: one head ({heads[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
