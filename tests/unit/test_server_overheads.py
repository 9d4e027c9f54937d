"""R77 and R78: `bureau serve`'s production defaults and the server's garbage-collector settings."""

import asyncio
import dataclasses
import gc
import weakref
from collections.abc import Iterator

import pytest

from cli import parser
from settings import Settings
from web.serving import collect_fully, cores, default_workers, tune_garbage_collector


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_serve_defaults_to_no_access_log_info_and_the_cores() -> None:
    args = parser().parse_args(["serve"])
    assert (args.access_log, args.log_level, args.workers) == (False, "info", None)
    assert default_workers("postgresql+asyncpg://db/bureau") == cores() >= 1
    # SQLite: one writer at a time, and live events that stay in their process.
    assert default_workers("sqlite+aiosqlite:///bureau.db") == 1


def test_serve_flags_still_work() -> None:
    args = parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "9000", "--workers", "3", "--access-log",
                                "--log-level", "warning"])
    assert (args.host, args.port, args.workers, args.access_log, args.log_level) == ("0.0.0.0", 9000, 3, True,
                                                                                     "warning")
    with pytest.raises(SystemExit):
        parser().parse_args(["serve", "--log-level", "loud"])


def test_the_collector_is_tuned_and_start_up_frozen(restore_gc: None) -> None:
    gc.unfreeze()
    tune_garbage_collector(dataclasses.replace(Settings(), gc_thresholds=(12_345, 6, 7), gc_freeze=True))
    assert gc.get_threshold() == (12_345, 6, 7)
    assert gc.get_freeze_count() > 1000  # every module and the schema


def test_python_s_own_collector_when_asked(restore_gc: None) -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    tune_garbage_collector(dataclasses.replace(Settings(), gc_thresholds=None, gc_freeze=False))
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_overhead_settings_are_read_with_safe_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BUREAU_GC_THRESHOLDS", "BUREAU_GC_FREEZE", "BUREAU_PRINCIPAL_CACHE_SECONDS",
                 "BUREAU_DOCUMENT_CACHE_SIZE", "BUREAU_DOCUMENT_CACHE_TEXT", "BUREAU_GC_FULL_SECONDS",
                 "BUREAU_MALLOC_TUNING", "BUREAU_LOG_FLUSH_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.gc_thresholds == (50_000, 50, 100) and settings.gc_freeze
    assert settings.principal_cache_seconds == 5 and settings.document_cache_size == 500
    assert settings.gc_full_seconds == 10 and settings.malloc_tuning
    assert settings.log_flush_seconds == 0.2
    monkeypatch.setenv("BUREAU_LOG_FLUSH_SECONDS", "0")
    assert Settings().log_flush_seconds == 0
    monkeypatch.setenv("BUREAU_GC_FULL_SECONDS", "0")
    assert Settings().gc_full_seconds == 0
    monkeypatch.setenv("BUREAU_GC_THRESHOLDS", "python")
    monkeypatch.setenv("BUREAU_GC_FREEZE", "off")
    monkeypatch.setenv("BUREAU_PRINCIPAL_CACHE_SECONDS", "0")
    monkeypatch.setenv("BUREAU_DOCUMENT_CACHE_SIZE", "0")
    settings = Settings()
    assert (settings.gc_thresholds, settings.gc_freeze, settings.principal_cache_seconds,
            settings.document_cache_size) == (None, False, 0, 0)


@pytest.mark.parametrize(("name", "value"), [
    ("BUREAU_GC_THRESHOLDS", "1,2"), ("BUREAU_GC_THRESHOLDS", "0,10,10"), ("BUREAU_GC_THRESHOLDS", "a,b,c"),
    ("BUREAU_GC_FREEZE", "yes"), ("BUREAU_PRINCIPAL_CACHE_SECONDS", "-1"), ("BUREAU_PRINCIPAL_CACHE_SECONDS", "nan"),
    ("BUREAU_DOCUMENT_CACHE_SIZE", "-5"), ("BUREAU_DOCUMENT_CACHE_SIZE", "many"),
    ("BUREAU_GC_FULL_SECONDS", "-1"), ("BUREAU_GC_FULL_SECONDS", "inf"),
    ("BUREAU_LOG_FLUSH_SECONDS", "-0.5"), ("BUREAU_LOG_FLUSH_SECONDS", "soon"),
])
def test_bad_overhead_settings_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        Settings()


class _Cyclic:
    def __init__(self) -> None:
        self.me = self


async def test_a_full_collection_runs_every_so_often(restore_gc: None) -> None:
    """R100: a cycle is freed by the server's own full collections, whatever the thresholds."""
    gc.disable()
    try:
        cycle = _Cyclic()
        alive = weakref.ref(cycle)
        del cycle
        collector = asyncio.create_task(collect_fully(0.01))
        for _ in range(500):  # a bound, not a timing: the first collection frees it
            if alive() is None:
                break
            await asyncio.sleep(0.01)
        collector.cancel()
        assert alive() is None
    finally:
        gc.enable()


def test_the_servers_pool_keeps_twenty_connections_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """R108: fewer pooled connections than concurrent requests meant a new connection per request."""
    from app import server_database

    monkeypatch.delenv("BUREAU_DB_POOL_SIZE", raising=False)
    assert Settings().db_pool_size == 20
    database = server_database(Settings(), "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    assert database.engine.pool.size() == 20  # type: ignore[attr-defined]
    monkeypatch.setenv("BUREAU_DB_POOL_SIZE", "0")
    with pytest.raises(ValueError, match="BUREAU_DB_POOL_SIZE"):
        Settings()


ALLOCATE = """
import dataclasses, sys
from settings import Settings
from web.serving import tune_allocator, trim_heap
settings = dataclasses.replace(Settings(), malloc_tuning=sys.argv[1] == "on")
tune_allocator(settings)
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
big = bytearray(8 << 20); del big  # freeing a large block is what raises glibc's threshold
start = rss()
blocks = [bytearray(300 << 10) for _ in range(200)]  # a busy moment: 60 MB of answers
del blocks
trim_heap(settings)
print(rss() - start)
"""


def test_large_answers_are_given_back_to_the_system() -> None:
    """R109: after a busy moment a worker returns what large answers took (glibc only)."""
    import subprocess
    import sys

    from web.serving import _glibc

    if _glibc() is None:
        pytest.skip("not glibc's malloc")
    kept = {mode: int(subprocess.run([sys.executable, "-c", ALLOCATE, mode], capture_output=True, text=True,
                                     check=True).stdout) for mode in ("on", "off")}
    assert kept["on"] < 8 << 20, kept  # less than a tenth of the 60 MB stays
    assert kept["off"] > kept["on"], kept


async def test_one_header_timer_a_connection_holding_no_request() -> None:
    """R109: each answer re-arms the connection's one header timer (R59), which holds a count, not the
    request: a timer per answer holding its cycle kept ten seconds of requests alive under load."""
    import asyncio

    from web.serving import GuardedHttpTools

    protocol = GuardedHttpTools.__new__(GuardedHttpTools)
    protocol.loop = asyncio.get_running_loop()
    protocol._headers_timer, protocol._requests = None, 0
    protocol.cycle = object()  # type: ignore[assignment]
    for _ in range(100):
        protocol._requests += 1
        protocol._expect_headers()
    live = [h for h in protocol.loop._scheduled  # type: ignore[attr-defined]
            if not h.cancelled() and h._callback == protocol._headers_due]
    assert live == [protocol._headers_timer]
    assert all(arg is not protocol.cycle for arg in live[0]._args)
    live[0].cancel()
