"""The in-process side of cache invalidation: announcements reach the caches of their topic."""

from __future__ import annotations

from clearport.core.invalidation import CacheTopic, InvalidationHub, NoCache


class Recorder:
    def __init__(self) -> None:
        self.evicted: list[str] = []
        self.cleared = 0

    def evict(self, key: str) -> None:
        self.evicted.append(key)

    def clear(self) -> None:
        self.cleared += 1


def test_an_announcement_reaches_every_cache_of_its_topic_only() -> None:
    hub = InvalidationHub()
    deks, deks_too, keys = Recorder(), Recorder(), Recorder()
    hub.subscribe(CacheTopic.DATA_KEYS, deks)
    hub.subscribe(CacheTopic.DATA_KEYS, deks_too)
    hub.subscribe(CacheTopic.API_KEY, keys)
    assert hub.deliver("data_keys", "mer_1")
    assert (deks.evicted, deks_too.evicted, keys.evicted) == (["mer_1"], ["mer_1"], [])


def test_an_unknown_topic_is_ignored() -> None:
    hub = InvalidationHub()
    deks = Recorder()
    hub.subscribe(CacheTopic.DATA_KEYS, deks)
    assert not hub.deliver("routing", "rrs_1")  # a newer process may announce more
    assert deks.evicted == []


def test_clear_all_empties_every_cache() -> None:
    hub = InvalidationHub()
    deks, keys = Recorder(), Recorder()
    hub.subscribe(CacheTopic.DATA_KEYS, deks)
    hub.subscribe(CacheTopic.API_KEY, keys)
    hub.subscribe(CacheTopic.API_KEY, NoCache())
    hub.clear_all()
    assert (deks.cleared, keys.cleared) == (1, 1)
