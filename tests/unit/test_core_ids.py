"""Ids made in bulk (`new_ids`): the layout of `new_id`, one millisecond for the batch, every
random character equally likely, creation order across milliseconds."""

from __future__ import annotations

from collections import Counter

import pytest

from clearport.core.ids import _ALPHABET, _encode, is_id, new_id, new_ids

NOW_MS = 1_765_000_000_123


def test_bulk_ids_have_the_layout_and_share_their_millisecond() -> None:
    ids = new_ids("evt", 5_000, now_ms=NOW_MS)
    assert len(ids) == len(set(ids)) == 5_000
    assert all(is_id(i, "evt") for i in ids)
    assert {i[:14] for i in ids} == {"evt_" + _encode(NOW_MS, 10)}
    assert new_id("evt", now_ms=NOW_MS)[:14] == ids[0][:14]
    assert new_ids("po", 0) == []


def test_a_later_millisecond_sorts_after_a_whole_batch() -> None:
    batch = new_ids("stl", 1_000, now_ms=NOW_MS)
    later = new_ids("stl", 1_000, now_ms=NOW_MS + 1)
    assert max(batch) < min(later)
    assert sorted(batch + later) == sorted(batch) + sorted(later)


def test_every_random_character_is_equally_likely() -> None:
    """320,000 random characters: each of the 32 about 10,000 times (a standard deviation of
    ~98; a character that came from a biased mapping would be thousands off)."""
    ids = new_ids("txn", 20_000, now_ms=NOW_MS)
    counts = Counter("".join(i[14:] for i in ids))
    assert set(counts) == set(_ALPHABET)
    assert all(9_000 < n < 11_000 for n in counts.values()), counts


def test_an_unknown_prefix_is_refused_in_bulk_too() -> None:
    with pytest.raises(ValueError, match="unknown id prefix"):
        new_ids("nope", 3)
