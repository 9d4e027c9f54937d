"""How `bureau serve` runs uvicorn against slow and greedy clients (R59).

uvicorn bounds header size (h11_max_incomplete_event_size), concurrent connections
(limit_concurrency: 503 beyond it), idle keep-alive connections and WebSocket messages, but
it waits for a request's headers for ever: its keep-alive timer starts only after a first
answer, and stops at the first byte of the next request. SlowHeadersProtocol closes a
connection whose request headers are not complete within BUREAU_HEADER_TIMEOUT seconds of
the connection opening or of its last answer (slowloris). Slow bodies are web.guard's.
"""

import asyncio
import functools
import gc
import os
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from settings import Limits, Settings


@functools.cache
def _limits() -> Limits:
    return Limits()  # once per worker process, from the environment the workers share


class SlowHeadersProtocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._expect_headers()

    def _expect_headers(self) -> None:
        self.loop.call_later(_limits().header_timeout, self._headers_due, self.cycle)

    def _headers_due(self, cycle: Any) -> None:
        # No request began since: the client sends its headers too slowly, or nothing at all.
        if self.cycle is cycle and (cycle is None or cycle.response_complete) and not self.transport.is_closing():
            self.transport.close()


def uvicorn_options(limits: Limits) -> dict[str, Any]:
    return {
        "http": SlowHeadersProtocol,
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        "timeout_keep_alive": limits.keep_alive_timeout,
        "limit_concurrency": limits.max_connections,
        "ws_max_size": limits.max_body_bytes,
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


async def collect_fully(seconds: float) -> None:
    """R100: a full collection every `seconds` until cancelled. With the thresholds raised and start-up
    frozen, Python runs one only once the oldest generation has grown by a quarter of what survived
    start-up (CPython's long-lived heuristic), and the cycles requests promoted there meanwhile grow the
    process by megabytes a second under load. A full collection walks only what is not frozen: a few
    milliseconds."""
    while True:
        await asyncio.sleep(seconds)
        gc.collect()
