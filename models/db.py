"""Engine and session factory; one AsyncSession per request or unit of work.

Each factory makes sessions of its own ORM session class, so that the hooks a part of the app
needs on every commit (models.data_versions, live.publish, auth.principals) are registered on
that factory, by name, where it is built or put to use (`add_hooks`), and never on SQLAlchemy's
global Session, where importing a module would have put them for whoever opened a session.
"""

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

from models.outage import is_outage

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///bureau.db"


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):  # type: ignore[no-untyped-def]
    # SQLite enforces foreign keys only when asked, per connection.
    module = type(dbapi_connection).__module__
    if "sqlite" in module:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


# A pooled connection idle this long is pinged before use: one the network dropped silently.
IDLE_PING_SECONDS = 30.0
_CHECKED_IN = "bureau.checked_in_at"


def _check_on_checkout(engine: AsyncEngine) -> None:
    """R97: a pooled connection the server closed (a restart, a terminated backend) is replaced
    before use, at no round trip: asyncpg already knows its socket closed. Only one idle for
    IDLE_PING_SECONDS is pinged (SQLAlchemy's pre-ping, which pings every checkout, is three
    statements on the wire per request: BEGIN, ";" and ROLLBACK)."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        driver_connection = record.driver_connection  # asyncpg's own
        if driver_connection is not None and driver_connection.is_closed():
            raise exc.DisconnectionError("the server closed this connection")
        idle_since = record.info.get(_CHECKED_IN)
        if idle_since is not None and time.monotonic() - idle_since > IDLE_PING_SECONDS:
            try:
                dialect.do_ping(dbapi_connection)
            except Exception as error:
                raise exc.DisconnectionError("the connection failed its ping") from error


@dataclass(frozen=True)
class DriverStatement:
    """A Core statement compiled once for the driver: its SQL text and its positional parameters, all
    fixed but one (`variable`, a request's clock), which is bound anew each time it runs."""

    sql: str
    parameters: tuple[Any, ...]
    variable_at: tuple[int, ...]  # the positions of `variable`
    variable_processor: Callable[[Any], Any] | None

    @classmethod
    def of(cls, statement: ClauseElement, dialect: Dialect, variable: str, example: object) -> "DriverStatement":
        """As SQLAlchemy's execution compiles and expands it (IN lists, bind casts, bind processors)."""
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        state = compiled.construct_expanded_state({variable: example}, escape_names=False)
        if state.positiontup is None:
            raise ValueError("the dialect's parameters are not positional")
        # The expanded state's processors are its IN lists' alone; the others are the compiled statement's,
        # merged as SQLAlchemy's execution context merges them.
        processors: dict[str, Callable[[Any], Any]] = {}
        for name, processor in {**compiled._bind_processors, **state.processors}.items():
            if not callable(processor):
                raise ValueError("a tuple-typed parameter is not supported on the driver")
            processors[name] = processor
        values = tuple(processors[name](state.parameters[name]) if name in processors else state.parameters[name]
                       for name in state.positiontup)
        return cls(state.statement, values, tuple(i for i, name in enumerate(state.positiontup) if name == variable),
                   processors.get(variable))

    def bind(self, value: object) -> tuple[Any, ...]:
        if not self.variable_at:
            return self.parameters
        processed = value if self.variable_processor is None else self.variable_processor(value)
        parameters = list(self.parameters)
        for index in self.variable_at:
            parameters[index] = processed
        return tuple(parameters)


@dataclass
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # R97: sessions for a request's reads. On PostgreSQL they run without a transaction of their own:
    # at READ COMMITTED each statement sees its own snapshot either way, so BEGIN and ROLLBACK around
    # a read are two round trips that buy nothing. Writes always go through `sessions` (one
    # transaction per unit of work, R26).
    reads: async_sessionmaker[AsyncSession]
    # Told the SQL and parameters of each statement run on the driver (driver_scalar), which SQLAlchemy's
    # events never see: as `before_cursor_execute` is for the rest (statement counts, bench.explain).
    driver_listeners: list[Callable[[str, tuple[Any, ...]], None]] = field(default_factory=list)
    # R110: connections the driver statements keep checked out between requests, at most `hold` (half the
    # pool, the rest for sessions): the pool's checkout and checkin were a third of a prepared read's CPU.
    hold: int = 0
    _held: list[tuple[PoolProxiedConnection, float]] = field(default_factory=list, init=False, repr=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def dispose(self) -> None:
        self.hold = 0  # a statement still running gives its connection back rather than holding it
        await self.release_held()
        await self.engine.dispose()

    async def driver_scalar(self, statement: DriverStatement, value: object) -> Any:
        """The first column of the first row, run on asyncpg itself with no transaction (as `reads`, R97):
        none of SQLAlchemy's execution, which was a third of a small read's CPU. The connection is one the
        driver statements hold between requests (R110), else one from the pool. One the statement left
        unusable (an outage, a cancelled statement) is discarded from the pool."""
        parameters = statement.bind(value)
        for listener in self.driver_listeners:
            listener(statement.sql, parameters)
        pooled = await self._checkout()
        driver = pooled.driver_connection
        assert driver is not None
        try:
            result = await driver.fetchval(statement.sql, *parameters)
        except BaseException as error:
            if is_outage(error) or not isinstance(error, Exception) or driver.is_closed():
                await self._discard(pooled, error if isinstance(error, Exception) else None)
                if is_outage(error):  # the others were opened to the same server: as SQLAlchemy's pool does
                    held, self._held = self._held, []
                    for other, _ in held:
                        await self._discard(other, None)
            else:
                await self._checkin(pooled)  # an error of the statement's own: the connection is sound
            raise
        await self._checkin(pooled)
        return result

    async def _checkout(self) -> PoolProxiedConnection:
        """A held connection the server has not closed and that has not idled past IDLE_PING_SECONDS (the
        pool would ping those: so are they); else the pool's, through its checks (R97)."""
        while self._held:
            pooled, since = self._held.pop()
            driver = pooled.driver_connection
            if driver is None or driver.is_closed():
                await self._discard(pooled, None)
                continue
            if time.monotonic() - since > IDLE_PING_SECONDS:
                # As the pool's checkout pings a connection idle this long (R97): giving it back would make
                # it look freshly checked in, and never pinged.
                try:
                    # One round trip, no transaction (the dialect's ping is three); not ";", whose empty
                    # answer asyncpg's execute does not take.
                    await driver.execute("SELECT 1")
                except Exception as error:  # noqa: BLE001 - a failed ping means a dead connection, not a bug
                    await self._discard(pooled, error)
                    continue
            return pooled
        return await greenlet_spawn(self.engine.sync_engine.raw_connection)

    async def _discard(self, pooled: PoolProxiedConnection, error: Exception | None) -> None:
        await greenlet_spawn(pooled.invalidate, error)
        await greenlet_spawn(pooled.close)

    async def _checkin(self, pooled: PoolProxiedConnection) -> None:
        if len(self._held) < self.hold:
            self._held.append((pooled, time.monotonic()))
        else:
            await greenlet_spawn(pooled.close)

    async def release_held(self) -> None:
        """Gives the held connections back to the pool (before it is disposed of)."""
        held, self._held = self._held, []
        for pooled, _ in held:
            await greenlet_spawn(pooled.close)


def connect(url: str | None = None, *, connect_timeout: float | None = None, pool_timeout: float | None = None,
            command_timeout: float | None = None, **engine_options: object) -> Database:
    """The timeouts (seconds, PostgreSQL only) make a database outage fail fast (R54); the server sets
    them from settings.py, commands such as the rollover leave the command timeout unset."""
    url = url or database_url()
    if not url.startswith("postgresql"):
        engine_options.pop("pool_size", None)  # SQLite's pool is SQLAlchemy's choice
    if url.startswith("postgresql"):
        engine_options.setdefault("pool_size", 10)
        engine_options.setdefault("max_overflow", 20)
        if pool_timeout is not None:
            engine_options.setdefault("pool_timeout", pool_timeout)
        connect_args = dict(engine_options.pop("connect_args", None) or {})  # type: ignore[call-overload]
        if connect_timeout is not None:
            connect_args.setdefault("timeout", connect_timeout)
        if command_timeout is not None:
            connect_args.setdefault("command_timeout", command_timeout)
        engine_options["connect_args"] = connect_args
    # Statement parameters never appear in error messages (they hold personal data and hashes).
    engine_options.setdefault("hide_parameters", True)
    engine = create_async_engine(url, **engine_options)  # type: ignore[arg-type]
    sessions = session_factory(engine)
    if engine.dialect.name != "postgresql":
        return Database(engine, sessions, sessions)
    if not engine_options.get("pool_pre_ping"):
        _check_on_checkout(engine)
    # The same session class, so that whatever a factory's hooks are, a read session is of its kind.
    reads = async_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"),
                               sync_session_class=session_class(sessions), expire_on_commit=False, autoflush=False)
    size = getattr(engine.sync_engine.pool, "size", None)  # a queue pool's (PostgreSQL's)
    return Database(engine, sessions, reads, hold=size() // 2 if callable(size) else 0)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions of a class of their own, with the hooks every write needs: the data versions (R82)."""
    from models import data_versions  # models.data_versions registers itself through add_hooks below

    class DatabaseSession(Session):
        """The ORM sessions of one factory: the hooks registered on this class are this factory's alone."""

    sessions = async_sessionmaker(engine, sync_session_class=DatabaseSession, expire_on_commit=False,
                                  autoflush=False)
    data_versions.install(sessions)
    return sessions


def session_class(sessions: async_sessionmaker[AsyncSession]) -> type[Session]:
    """The ORM session class of a factory made by `session_factory`."""
    cls = sessions.kw.get("sync_session_class")
    if not (isinstance(cls, type) and issubclass(cls, Session)) or cls is Session:
        raise ValueError("hooks go on a factory's own session class (models.db.session_factory), not on Session")
    return cls


_ADDED_HOOKS = "_bureau_hooks"  # on a factory's session class: the (event, listener) pairs add_hooks registered


def add_hooks(sessions: async_sessionmaker[AsyncSession], hooks: Mapping[str, Callable[..., Any]], *,
              first: bool = False) -> None:
    """Registers session events (name: listener) on this factory's sessions; again changes nothing.
    `first`: ahead of the listeners already registered for the same events (SQLAlchemy's insert)."""
    target = session_class(sessions)
    # Which hooks a class has is kept on the class itself, not asked of event.contains: SQLAlchemy's
    # registry keys listeners by id(), so once a factory's class is collected, a later class at the
    # same address seems to have its hooks, and a new Database would have been left without them.
    added: set[tuple[str, Callable[..., Any]]] = target.__dict__.get(_ADDED_HOOKS) or set()
    setattr(target, _ADDED_HOOKS, added)
    for name, listener in hooks.items():
        if (name, listener) not in added:
            event.listen(target, name, listener, insert=first)
            added.add((name, listener))
