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
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from settings import Limits


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
