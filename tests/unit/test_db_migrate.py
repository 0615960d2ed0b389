"""The schema check's own reading of the migrations (db/migrate.py) against alembic's."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearport.db import migrate


def test_the_head_read_from_the_files_is_alembics() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate._config("postgresql://localhost/x"))
    assert migrate.head_revision() == script.get_current_head()
    # Every migration is read with the revisions it follows, as alembic has them.
    assert {r.revision: tuple(sorted(r._all_down_revisions)) for r in script.walk_revisions()} == {
        revision: tuple(sorted(d)) for revision, d in migrate._revisions().items()
    }


def test_two_heads_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (versions / "b.py").write_text('revision = "b"\ndown_revision = "a"\n')
    (versions / "c.py").write_text('revision = "c"\ndown_revision = "a"\n')
    monkeypatch.setattr(migrate, "_MIGRATIONS", tmp_path)
    with pytest.raises(RuntimeError, match=r"one head, not \['b', 'c'\]"):
        migrate.head_revision()
    (versions / "d.py").write_text('revision = "d"\ndown_revision = ("b", "c")\n')
    assert migrate.head_revision() == "d"
