"""How `bureau serve` runs uvicorn against slow and greedy clients (R59), on httptools (R107).

uvicorn bounds concurrent connections (limit_concurrency: 503 beyond it), idle keep-alive
connections and WebSocket messages, but it waits for a request's headers for ever: its keep-alive
timer starts only after a first answer, and stops at the first byte of the next request.
GuardedHttpTools closes a connection whose request headers are not complete within
BUREAU_HEADER_TIMEOUT seconds of the connection opening or of its last answer (slowloris), and
answers 431 once the headers pass BUREAU_MAX_HEADER_BYTES (httptools, unlike h11, has no bound of
its own). It runs on httptools, uvicorn's C parser: h11's pure-Python one was a sixth of a small
read's CPU. Slow bodies are web.guard's; a request whose body is whole when it completes says so in its
scope (BODY_RECEIVED), so that web.guard reads it without a timer (R118).
"""

import asyncio
import ctypes
import functools
import gc
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from settings import Limits, Settings


@functools.cache
def _limits() -> Limits:
    return Limits()  # once per worker process, from the environment the workers share


# R118: an ASGI scope extension of this protocol's: the whole body had arrived when the request was handed
# on, so that web.guard reads it with no timer. Without it (another server, a body still arriving) web.guard
# bounds the read by BUREAU_BODY_TIMEOUT.
BODY_RECEIVED = "bureau.body_received"
HEADERS_END = b"\r\n\r\n"
TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
             b"content-length: 34\r\nconnection: close\r\n\r\nRequest header fields are too large")


class GuardedHttpTools(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_bytes = 0
        self._in_headers = True
        self._requests = 0  # whose headers were complete: each makes a new cycle
        self._headers_timer: asyncio.TimerHandle | None = None
        self._expect_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._headers_timer is not None:
            self._headers_timer.cancel()

    def data_received(self, data: bytes) -> None:
        if self._in_headers:
            # What arrives before the blank line that ends the headers counts; a body sent with them does not.
            end = data.find(HEADERS_END)
            self._header_bytes += len(data) if end < 0 else end
            if self._header_bytes > _limits().max_header_bytes:
                self.transport.write(TOO_LARGE)
                self.transport.close()
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._header_bytes = 0
        self._requests += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_headers = True  # what comes next on the connection is the next request's headers
        cycle = self.cycle
        if cycle is not None and not cycle.more_body:  # the body is whole: receive() returns it at once
            extensions: dict[str, Any] = cycle.scope.setdefault("extensions", {})  # type: ignore[assignment]
            extensions[BODY_RECEIVED] = True

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._expect_headers()

    def _expect_headers(self) -> None:
        # One timer a connection, holding a count, not the request: at a thousand answers a second, a
        # timer per answer holding its cycle kept ten seconds of requests alive (R109).
        if self._headers_timer is not None:
            self._headers_timer.cancel()
        self._headers_timer = self.loop.call_later(_limits().header_timeout, self._headers_due, self._requests)

    def _headers_due(self, requests: int) -> None:
        # No request's headers came since: the client sends them too slowly, or nothing at all.
        self._headers_timer = None
        if self._requests == requests and (self.cycle is None or self.cycle.response_complete) \
                and not self.transport.is_closing():
            self.transport.close()


def uvicorn_options(limits: Limits) -> dict[str, Any]:
    return {
        "http": GuardedHttpTools,
        "timeout_keep_alive": limits.keep_alive_timeout,
        "limit_concurrency": limits.max_connections,
        "ws_max_size": limits.max_body_bytes,
        # No `server: uvicorn` on every answer: it tells a scanner what to try, and costs a header a request.
        "server_header": False,
    }


def cores() -> int:
    """The cores this process may run on (a container's cpuset, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(database_url: str) -> int:
    """One worker per core; one on SQLite, whose single file takes one writer at a time and whose
    live events reach only the process that wrote them (live.publish)."""
    return 1 if database_url.startswith("sqlite") else cores()


def tune_garbage_collector(settings: Settings) -> None:
    """R78: the cyclic collector was half of a request's CPU (issue 13). Raised thresholds collect a
    request's short-lived cycles (ORM rows, the executor's) less often; gc.freeze() moves what start-up
    made (modules, the schema) out of every later collection, so a full one no longer walks it."""
    if settings.gc_thresholds is not None:
        gc.set_threshold(*settings.gc_thresholds)
    if settings.gc_freeze:
        gc.collect()  # what start-up left as garbage is freed, not frozen
        gc.freeze()


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
LARGE = 128 * 1024  # glibc's own initial mmap threshold


@functools.cache
def _glibc() -> Any:
    """glibc's malloc, where the process runs on it (not musl, not macOS): else None."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def tune_allocator(settings: Settings) -> None:
    """R109: an answer's text and its JSON (hundreds of kilobytes on a big dashboard) are allocated by
    malloc, not Python's own allocator. glibc raises its mmap threshold each time such a block is
    freed, so that the next ones come from the heap, whose freed middle it never gives back: a worker
    grew to its busiest moment's size (200 MB and more) and stayed there. A fixed threshold keeps large
    blocks mmapped, returned when freed; collect_fully trims the heap too."""
    libc = _glibc() if settings.malloc_tuning else None
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, LARGE)  # fixed: also switches the dynamic raising off
        libc.mallopt(M_TRIM_THRESHOLD, 2 * LARGE)


def trim_heap(settings: Settings) -> None:
    libc = _glibc() if settings.malloc_tuning else None
    if libc is not None:
        libc.malloc_trim(0)


async def collect_fully(seconds: float, settings: Settings | None = None) -> None:
    """R100: a full collection every `seconds` until cancelled. With the thresholds raised and start-up
    frozen, Python runs one only once the oldest generation has grown by a quarter of what survived
    start-up (CPython's long-lived heuristic), and the cycles requests promoted there meanwhile grow the
    process by megabytes a second under load. A full collection walks only what is not frozen: a few
    milliseconds."""
    while True:
        await asyncio.sleep(seconds)
        gc.collect()
        if settings is not None:
            trim_heap(settings)  # R109: what the collection freed goes back to the system
