"""The id patterns the OpenAPI document declares agree with the ids the code makes and accepts."""

from __future__ import annotations

import re

import pytest

from clearport.core.ids import PREFIXES, id_pattern, is_id, new_id


@pytest.mark.parametrize("prefix", sorted(PREFIXES))
def test_the_pattern_matches_exactly_the_ids_of_its_kind(prefix: str) -> None:
    made = new_id(prefix)
    assert re.fullmatch(id_pattern(prefix), made) and is_id(made, prefix)
    assert re.fullmatch(id_pattern(), made)
    others = [new_id(other) for other in PREFIXES - {prefix}]
    assert not any(re.fullmatch(id_pattern(prefix), other) for other in others)
    body = made.split("_", 1)[1]
    for malformed in (
        f"{prefix}_123",
        f"{prefix}_{body.lower()}",
        f"{prefix}_{body[:-1]}U",  # U is not in Crockford's alphabet
        f"{prefix}_{body}\x00",
        f"{prefix}_{body}\n",
        f" {made}",
    ):
        assert not re.fullmatch(id_pattern(prefix), malformed), malformed
        assert not is_id(malformed, prefix), malformed


def test_an_unknown_kind_has_no_pattern() -> None:
    with pytest.raises(ValueError, match="unknown id prefix"):
        id_pattern("nope")
