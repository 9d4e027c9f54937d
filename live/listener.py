"""One dedicated asyncpg connection per process (per database) LISTENs and fans every
notification out to the hub. When it had to reconnect, every subscriber gets a RESYNC: what was
announced while nobody listened is lost, and they catch up from the database."""

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from live.hub import CHANNEL, RESYNC, Hub, hub_for

log = logging.getLogger("bureau.events")


def listen_connect_args(engine: AsyncEngine) -> dict[str, Any]:
    """asyncpg.connect() arguments from the app's SQLAlchemy URL (DATABASE_URL)."""
    _, kwargs = engine.dialect.create_connect_args(engine.url)
    for sqlalchemy_only in ("prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback",
                            "async_creator_fn"):
        kwargs.pop(sqlalchemy_only, None)
    return dict(kwargs)


class Listener:
    """LISTEN on one dedicated connection; reconnects (with back-off) when it drops."""

    health_interval = 15.0
    min_delay = 0.5
    max_delay = 30.0

    application_name = "bureau live events"  # how pg_stat_activity shows the connection

    def __init__(self, engine: AsyncEngine, hub: Hub) -> None:
        self.connect_args = listen_connect_args(engine)
        settings = self.connect_args.setdefault("server_settings", {})
        settings.setdefault("application_name", self.application_name)
        self.hub = hub

    def _notified(self, connection: object, pid: int, channel: str, payload: str) -> None:
        try:
            events = json.loads(payload)
        except ValueError:
            log.warning("ignoring a malformed %s notification", channel)
            return
        if isinstance(events, list):
            self.hub.publish([e for e in events if isinstance(e, dict)])

    async def run(self, stop: asyncio.Event) -> None:
        delay = self.min_delay
        while not stop.is_set():
            try:
                await self._listen(stop)
            except Exception as exc:  # noqa: BLE001 - whatever broke, listen again
                if self.hub.listening.is_set():  # it had been working: start the back-off afresh
                    delay = self.min_delay
                log.warning("live events: %s; listening again in %.1fs", type(exc).__name__, delay)
            finally:
                self.hub.listening.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, self.max_delay)

    async def _listen(self, stop: asyncio.Event) -> None:
        connection = await asyncio.wait_for(asyncpg.connect(**self.connect_args), 10)
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        try:
            await connection.add_listener(CHANNEL, self._notified)
            self.hub.listening.set()
            # Whatever was announced while nobody listened is lost: subscribers catch up.
            self.hub.publish([RESYNC])
            while not stop.is_set() and not lost.is_set():
                waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())]
                await asyncio.wait(waiters, timeout=self.health_interval, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
                if not stop.is_set() and not lost.is_set():
                    await asyncio.wait_for(connection.fetchval("SELECT 1"), 10)  # a silent drop shows here
            if lost.is_set() and not stop.is_set():
                raise ConnectionError("listener connection closed")
        finally:
            if not connection.is_closed():
                try:
                    await asyncio.wait_for(connection.close(), 5)
                except Exception:  # noqa: BLE001 - closing a broken connection
                    connection.terminate()


@dataclass
class _Running:
    stop: asyncio.Event
    task: "asyncio.Task[None]"
    users: int = 0


_running: "weakref.WeakKeyDictionary[Hub, _Running]" = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def listening(engine: AsyncEngine) -> AsyncIterator[Hub]:
    """Keeps the database's listener running while any app of this process on it runs (PostgreSQL;
    on SQLite live.publish hands events to the hub itself)."""
    hub = hub_for(engine)
    if engine.dialect.name != "postgresql":
        yield hub
        return
    running = _running.get(hub)
    if running is None:
        stop = asyncio.Event()
        running = _running[hub] = _Running(stop, asyncio.create_task(Listener(engine, hub).run(stop),
                                                                     name="bureau-listener"))
    running.users += 1
    try:
        yield hub
    finally:
        running.users -= 1
        if running.users == 0 and _running.get(hub) is running:
            del _running[hub]
            running.stop.set()
            with contextlib.suppress(TimeoutError):  # cancelled if still connecting
                await asyncio.wait_for(running.task, 5)
