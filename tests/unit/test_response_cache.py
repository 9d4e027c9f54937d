"""The response cache's pieces without a server (R83): which documents may be kept, the store's
bound in bytes, and entries that come back from Redis damaged."""

import asyncio
import dataclasses

import pytest

from settings import Settings
from web.response_cache import Entry, LocalStore, ResponseCache, only_queries


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


def test_an_entry_keeps_its_operation_through_redis_and_reads_an_older_one() -> None:
    """R110: a hit names its operation as the miss did; an entry stored before entries held one has none."""
    stored = Entry(b'{"node":null}', 3, 3, 1.0, 2.0, ("Node", "query"))
    assert Entry.load(stored.dump()) == stored
    assert Entry.load(b"[3, 3, 1.0, 2.0]\n{}") == Entry(b"{}", 3, 3, 1.0, 2.0, (None, None))


@pytest.mark.parametrize("variables", [{"first": 10}, {"first": 2**70}, {"b": 1, "a": [1, {"y": 2, "x": 1}]}])
def test_cache_keys_differ_by_request_and_not_by_key_order(variables: dict[str, object]) -> None:
    from datetime import date

    from auth.principal import Principal
    from web.response_cache import Read, cache_key

    def key(value: dict[str, object]) -> str:
        return cache_key(b"secret", Principal(client_id="c", scopes=frozenset({"firms:read"})), {"global": 1},
                         date(2028, 2, 29), Read("query($first: Int) { viewer { clientId } }", None, value, None))

    reordered = dict(reversed(list(variables.items())))
    assert key(variables) == key(reordered)  # beyond 64 bits too: the standard encoder's key, not a crash
    assert key(variables) != key({**variables, "other": 1})


def test_the_lane_decodes_a_body_as_the_app_does_and_keys_tell_values_apart() -> None:
    """R110: integers beyond 64 bits stay exact (orjson would make them floats), NaN is refused, and an
    infinity is not taken for null in either key (orjson writes it as null)."""
    from datetime import date

    from auth.principal import Principal
    from schema.prepared_reads import variables_key
    from web.response_cache import Read, cache_key

    big = Read.of_body(b'{"query": "q", "variables": {"a": 18446744073709551617}}')
    assert big is not None and big.variables == {"a": 18446744073709551617}
    assert Read.of_body(b'{"query": "q", "variables": {"a": NaN}}') is None
    assert Read.of_body(b'{"query": "q"') is None and Read.of_body(b"\xff") is None
    infinite, null = Read.of_body(b'{"query": "q", "variables": {"a": 1e400}}'), Read("q", None, {"a": None}, None)
    assert infinite is not None and variables_key(infinite.variables) != variables_key(null.variables)
    principal = Principal(client_id="c", scopes=frozenset())
    assert cache_key(b"s", principal, {}, date(2026, 12, 2), infinite) != cache_key(b"s", principal, {},
                                                                                   date(2026, 12, 2), null)


def _cache(now: float = 1000.0) -> ResponseCache:
    from datetime import UTC, datetime

    return ResponseCache(dataclasses.replace(Settings(), response_cache=True, redis_url=None),
                         lambda: datetime.fromtimestamp(now, UTC))


async def _one_waiting(cache: ResponseCache) -> "tuple[asyncio.Future[Entry | None], asyncio.Task[Entry | None]]":
    """The flight of "k" its first miss computes, and a second miss waiting for it."""
    own, _ = cache.flight("k")
    running, _ = cache.flight("k")
    waiter = asyncio.create_task(cache.landed(running))
    await asyncio.sleep(0)
    return own, waiter


async def test_the_first_miss_of_a_key_computes_it_and_the_others_wait() -> None:
    """R117: one flight a key; a kept answer lands with put() at once, and the flight is over."""
    cache = _cache()
    own, first = cache.flight("k")
    assert first  # this request computes it
    running, first = cache.flight("k")
    assert running is own and not first and cache.flight("other")[1]
    waiters = [asyncio.create_task(cache.landed(running)) for _ in range(3)]
    await asyncio.sleep(0)
    kept = cache.entry(b'{"a":1}', 3, 2)
    await cache.put("k", kept)
    assert await asyncio.gather(*waiters) == [kept] * 3 and cache.shared_misses == 3
    assert cache.flight("k")[1]  # a new miss computes again
    cache.land("k", own)  # the first computation's own end: a later flight is not its to land
    assert not cache.flight("k")[1]


async def test_a_miss_that_kept_nothing_leaves_each_waiter_to_compute_its_own() -> None:
    cache = _cache()
    own, waiter = await _one_waiting(cache)
    cache.land("k", own)  # an error, a budget that could not pay, a cancelled request: nothing kept
    assert await waiter is None and cache.shared_misses == 0


async def test_a_cancelled_waiter_does_not_cancel_the_others() -> None:
    cache = _cache()
    own, _ = cache.flight("k")
    running, _ = cache.flight("k")
    gone, staying = (asyncio.create_task(cache.landed(running)) for _ in range(2))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    kept = cache.entry(b"{}", 1, 1)
    cache.land("k", own, kept)
    assert await staying is kept and gone.cancelled()


async def test_an_answer_no_longer_fresh_is_not_handed_on() -> None:
    cache = _cache()
    own, waiter = await _one_waiting(cache)
    cache.land("k", own, Entry(b"{}", 1, 1, 0.0, 999.0))  # expired at 999 by the cache's clock (1000)
    assert await waiter is None
