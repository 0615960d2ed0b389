"""Interchange and scheme-fee tables shipped in the package (settlement/interchange/).

Each file is one version, named by the month it takes effect (`2026-01.json`). A business date is
priced with the latest version whose `effective_from` is on or before it.
"""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from importlib import resources

from clearport.core.errors import InvalidState
from clearport.settlement.fees import InterchangeTable

_PACKAGE = "clearport.settlement"
_DIRECTORY = "interchange"


@cache
def _all_versions() -> tuple[tuple[date, InterchangeTable], ...]:
    found: list[tuple[date, InterchangeTable]] = []
    for entry in (resources.files(_PACKAGE) / _DIRECTORY).iterdir():
        if entry.name.endswith(".json"):
            doc = json.loads(entry.read_text(encoding="utf-8"))
            found.append(
                (date.fromisoformat(doc["effective_from"]), InterchangeTable.from_json(doc))
            )
    return tuple(sorted(found, key=lambda pair: pair[0]))


def table_for(business_date: date) -> InterchangeTable:
    usable = [table for start, table in _all_versions() if start <= business_date]
    if not usable:
        raise InvalidState(f"No interchange table is in effect on {business_date.isoformat()}.")
    return usable[-1]
