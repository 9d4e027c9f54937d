"""The response cache's pieces without a server (R83): which documents may be kept, the store's
bound in bytes, and entries that come back from Redis damaged."""

import pytest

from web.response_cache import Entry, LocalStore, only_queries


@pytest.mark.parametrize(("document", "kept"), [
    ("{ viewer { clientId } }", True),
    ("query Dashboard($id: ID!) { agreement(id: $id) { subscription { id } } }", True),
    ("fragment F on Agreement { subscription { id } } query { ...F }", True),
    ("# mutation in a comment\n{ viewer { clientId } }", True),
    ('query { company(id: "} mutation {") { id } }', True),
    ('query { company(id: """a \\""" } mutation""") { id } }', True),
    ("query($mutation: ID) { viewer { clientId } }", True),
    ("mutation { updateCompany(input: {}) { company { id } } }", False),
    ("subscription { events { id } }", False),
    ("query A { viewer { clientId } } mutation B { x }", False),
    ("  mutation\n{ x }", False),
])
def test_only_queries_are_kept(document: str, kept: bool) -> None:
    assert only_queries(document) is kept


def entry(size: int, expires: float = 100.0) -> Entry:
    return Entry(b"x" * size, 1, 1, 0.0, expires)


def test_the_store_keeps_within_its_bytes_least_recently_used_out_first() -> None:
    store = LocalStore(max_bytes=100)
    for key in "abcde":
        store.put(key, entry(20))
    assert store.size == 100
    assert store.get("a", 1.0) is not None  # a is now the most recently used
    store.put("f", entry(20))
    assert store.size == 100
    assert store.get("b", 1.0) is None
    assert all(store.get(key, 1.0) is not None for key in "acdef")
    store.put("huge", entry(26))  # above a quarter of the store: not kept
    assert store.get("huge", 1.0) is None


def test_an_entry_is_good_from_when_it_was_stored_until_it_expires() -> None:
    store = LocalStore(max_bytes=100)
    store.put("k", Entry(b"{}", 1, 1, 10.0, 20.0))
    assert store.get("k", 9.0) is None  # a clock set back
    store.put("k", Entry(b"{}", 1, 1, 10.0, 20.0))
    assert store.get("k", 19.9) is not None
    assert store.get("k", 20.0) is None and store.size == 0


@pytest.mark.parametrize("raw", [b"", b"not json\n{}", b"[1, 2]\n{}", b'["a", 1, 2, 3]\n{}'])
def test_a_damaged_entry_from_redis_is_a_miss(raw: bytes) -> None:
    assert Entry.load(raw) is None


def test_an_entry_survives_the_trip_through_redis() -> None:
    stored = Entry(b'{"viewer":{"clientId":"c"}}', 7, 5, 1.5, 11.5)
    assert Entry.load(stored.dump()) == stored
