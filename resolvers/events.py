"""Live events (DESIGN.md section 5): every committed audit row is announced to the live
GraphQL subscriptions of every instance.

Publishing is hooked on the ORM session, so that every writer of audit rows (mutations,
the period change, accepting an invitation) announces them without having to remember to:
when a transaction that added audit rows commits, its events go out with `pg_notify` in
that same transaction, which PostgreSQL delivers only when (and if) the transaction
commits. SQLite has no LISTEN/NOTIFY: there the events go to this process's hub after the
commit, so that a single embedded server still works.

Listening: one dedicated asyncpg connection per process (per database) LISTENs and fans
every notification out to the hub, whose subscribers are the live subscriptions. Delivery
is at most once: a subscriber that falls behind, and every subscriber when the listener
had to reconnect, gets a RESYNC so that it can catch up from the database.

An event names the audit row, its firm, company and subscription, and `subscription_ids`:
every subscription whose seat usage the change may have moved (its own, that of its
company's agreement, of agreements it names, e.g. the source of a move, and for firm-wide
events the firm's master licence, whose CLIENT_USER pool counts the firm's client users).
"""

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
from sqlalchemy import event, func, inspect, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from models import AuditEvent, Company, Subscription
from models import ids as global_ids
from models.data_versions import NOTIFY

log = logging.getLogger("bureau.events")

CHANNEL = "bureau_events"
MAX_PAYLOAD = 7000  # NOTIFY payloads must stay under 8000 bytes
QUEUE_SIZE = 1000  # batches a subscriber may fall behind before it gets a RESYNC

Event = dict[str, Any]
RESYNC: Event = {"kind": "resync"}

_ADDED = "bureau.live.added"  # session.info: audit rows flushed in the transaction
_LOCAL = "bureau.live.local"  # session.info: events to hand to the hub after the commit (SQLite)
_LICENCES = "bureau.live.licences"  # session.info: agreement id -> its subscription's id or None, as read


def note_licence(session: Session, agreement_id: int, subscription_id: int | None) -> None:
    """An agreement's subscription (None: it has none) as the transaction read it: its events take it
    from here rather than read it again. (An agreement has at most one subscription.)"""
    session.info.setdefault(_LICENCES, {})[agreement_id] = subscription_id


# ------------------------------------------------------------------ the in-process hub


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
    """The subscribers of one process to one database, and its listener."""

    def __init__(self) -> None:
        self._subscribers: weakref.WeakSet[Subscriber] = weakref.WeakSet()
        self._users = 0
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
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

    @contextlib.asynccontextmanager
    async def running(self, engine: AsyncEngine) -> AsyncIterator["Hub"]:
        """Keeps the listener running while any app using this hub runs (PostgreSQL)."""
        if engine.dialect.name != "postgresql":
            yield self
            return
        self._users += 1
        if self._task is None:
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(Listener(engine, self).run(self._stop), name="bureau-listener")
        try:
            yield self
        finally:
            self._users -= 1
            if self._users == 0 and self._task is not None and self._stop is not None:
                self._stop.set()
                task, self._task = self._task, None
                with contextlib.suppress(TimeoutError):  # cancelled if still connecting
                    await asyncio.wait_for(task, 5)


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


# ------------------------------------------------------------------ the listener


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


# ------------------------------------------------------------------ publishing


def _named(values: str | None) -> Iterator[tuple[str, int]]:
    """The global IDs of agreements, companies and subscriptions an audit row's JSON names."""
    if not values:
        return
    stack: list[Any] = [json.loads(values)]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and len(value) < 100:
            try:
                type_name, pk = global_ids.decode(value)
            except global_ids.InvalidId:
                continue
            if type_name in ("Agreement", "Company", "LicenseSubscription"):
                yield type_name, pk


def _events(session: Session, rows: list[AuditEvent], noted: dict[int, int | None] | None = None) -> list[Event]:
    """The rows' events, with the subscriptions whose seat usage they may have moved."""
    companies: set[int] = set()
    agreements: set[int] = set()
    firms: set[int] = set()
    named: dict[int, list[tuple[str, int]]] = {}
    for row in rows:
        named[row.id] = [*_named(row.before), *_named(row.after)]
        if row.company_id is not None:
            named[row.id].append(("Company", row.company_id))
        companies.update(pk for kind, pk in named[row.id] if kind == "Company")
        agreements.update(pk for kind, pk in named[row.id] if kind == "Agreement")
        if row.company_id is None and row.subscription_id is None and row.firm_id is not None:
            firms.add(row.firm_id)
    agreement_of: dict[int, int] = {}
    for pk in list(companies):  # companies the transaction loaded already cost no statement
        known = session.identity_map.get(identity_key(Company, pk))
        if isinstance(known, Company) and "agreement_id" not in inspect(known).unloaded:
            agreement_of[pk] = known.agreement_id
            companies.discard(pk)
    if companies:
        agreement_of.update({pk: agreement for pk, agreement in session.execute(
            select(Company.id, Company.agreement_id).where(Company.id.in_(sorted(companies)))).all()})
    master_of: dict[int, int] = {}
    wanted_agreements = agreements | set(agreement_of.values())
    noted = noted or {}
    by_agreement = {a: pk for a, pk in noted.items() if a in wanted_agreements and pk is not None}
    wanted_agreements -= noted.keys()
    if wanted_agreements or firms:
        for pk, agreement, master_firm in session.execute(
            select(Subscription.id, Subscription.agreement_id, Subscription.master_firm_id).where(or_(
                Subscription.agreement_id.in_(sorted(wanted_agreements)),
                Subscription.master_firm_id.in_(sorted(firms)),
            ))
        ).all():
            if agreement is not None:
                by_agreement[agreement] = pk
            if master_firm is not None:
                master_of[master_firm] = pk
    events = []
    for row in rows:
        affected = {pk for kind, pk in named[row.id] if kind == "LicenseSubscription"}
        if row.subscription_id is not None:
            affected.add(row.subscription_id)
        for kind, pk in named[row.id]:
            agreement = agreement_of.get(pk) if kind == "Company" else pk if kind == "Agreement" else None
            if agreement is not None and agreement in by_agreement:
                affected.add(by_agreement[agreement])
        if row.company_id is None and row.subscription_id is None and row.firm_id in master_of:
            affected.add(master_of[row.firm_id])
        events.append({"kind": "audit", "audit_event_id": row.id, "firm_id": row.firm_id,
                       "company_id": row.company_id, "subscription_id": row.subscription_id,
                       "subscription_ids": sorted(affected)})
    return events


def payloads(events: list[Event]) -> Iterator[str]:
    """NOTIFY payloads of at most MAX_PAYLOAD bytes, each a JSON list of events."""
    chunk: list[str] = []
    size = 2
    for item in events:
        encoded = json.dumps(item, separators=(",", ":"))
        if chunk and size + len(encoded) + 1 > MAX_PAYLOAD:
            yield "[" + ",".join(chunk) + "]"
            chunk, size = [], 2
        chunk.append(encoded)
        size += len(encoded) + 1
    if chunk:
        yield "[" + ",".join(chunk) + "]"


@event.listens_for(Session, "after_flush")
def _collect(session: Session, flush_context: object) -> None:
    added = [obj for obj in session.new if isinstance(obj, AuditEvent)]
    if added:
        session.info.setdefault(_ADDED, []).extend(added)


# First among the commit's hooks (insert=True): the notifications are then noted before the data
# versions are bumped, and go out with the bump's statement (models.data_versions.NOTIFY).
@event.listens_for(Session, "before_commit", insert=True)
def _announce(session: Session) -> None:
    if session.new or session.dirty or session.deleted:
        session.flush()  # the commit would flush next anyway; the rows need their ids, the reads below their state
    added: list[AuditEvent] = session.info.pop(_ADDED, [])
    noted: dict[int, int | None] = session.info.pop(_LICENCES, {})
    rows = [row for row in added if inspect(row).persistent]  # not those of a rolled-back savepoint
    if not rows:
        return
    events = _events(session, rows, noted)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        session.info.setdefault(NOTIFY, []).extend((CHANNEL, payload) for payload in payloads(events))
    else:
        session.info[_LOCAL] = (connection.engine, events)


@event.listens_for(Session, "before_commit")
def _notify_the_rest(session: Session) -> None:
    """What the data-version bump did not send (it had nothing to bump), still in this transaction."""
    for channel, payload in session.info.pop(NOTIFY, []):
        session.connection().execute(select(func.pg_notify(channel, payload)))


@event.listens_for(Session, "after_commit")
def _deliver_locally(session: Session) -> None:
    local = session.info.pop(_LOCAL, None)
    if local is not None:
        engine, events = local
        hub_for(engine).publish(events)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_ADDED, None)
    session.info.pop(_LOCAL, None)
    session.info.pop(NOTIFY, None)
    session.info.pop(_LICENCES, None)
