"""The in-process hub: the live subscriptions of one process to one database, each with its
inbox. Delivery is at most once: a subscriber that falls behind gets a RESYNC, so that it can
catch up from the database."""

import asyncio
import weakref
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

CHANNEL = "bureau_events"  # the PostgreSQL NOTIFY channel every instance LISTENs on
QUEUE_SIZE = 1000  # batches a subscriber may fall behind before it gets a RESYNC

Event = dict[str, Any]
RESYNC: Event = {"kind": "resync"}


class Subscriber:
    """One live subscription's inbox: batches of events, in commit order. Close it when
    done; one never closed (say, a stream never started) leaves with the garbage."""

    def __init__(self, hub: "Hub", maxsize: int = QUEUE_SIZE) -> None:
        self.hub = hub
        self.queue: asyncio.Queue[list[Event]] = asyncio.Queue(maxsize)
        self.ready = False  # set by the subscription once it has read its starting point

    def offer(self, events: list[Event]) -> None:
        try:
            self.queue.put_nowait(events)
        except asyncio.QueueFull:
            # Fell behind: drop what waits and tell the subscriber to catch up from the database.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait([RESYNC])

    async def next(self, within: float | None = None) -> list[Event] | None:
        """The next batch; None when `within` seconds pass without one."""
        try:
            return await asyncio.wait_for(self.queue.get(), within)
        except TimeoutError:
            return None

    def close(self) -> None:
        self.hub._subscribers.discard(self)


class Hub:
    """The subscribers of one process to one database (its listener is live.listener's)."""

    def __init__(self) -> None:
        self._subscribers: weakref.WeakSet[Subscriber] = weakref.WeakSet()
        self.listening = asyncio.Event()  # set while LISTEN is active (PostgreSQL only)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def ready_count(self) -> int:
        """Subscriptions that have read their starting point: any later change reaches them."""
        return sum(1 for subscriber in self._subscribers if subscriber.ready)

    def subscribe(self) -> Subscriber:
        subscriber = Subscriber(self)
        self._subscribers.add(subscriber)
        return subscriber

    def publish(self, events: list[Event]) -> None:
        if events:
            for subscriber in list(self._subscribers):
                subscriber.offer(events)


_hubs: "weakref.WeakKeyDictionary[Engine, Hub]" = weakref.WeakKeyDictionary()


def hub_for(engine: AsyncEngine | Engine | Connection) -> Hub:
    """The hub of this process for one database (engine)."""
    if isinstance(engine, AsyncEngine):
        engine = engine.sync_engine
    elif isinstance(engine, Connection):
        engine = engine.engine
    hub = _hubs.get(engine)
    if hub is None:
        hub = _hubs[engine] = Hub()
    return hub
