"""Engine and session factory; one AsyncSession per request or unit of work."""

import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

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


@dataclass
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # A request's reads (authentication, loaders, compiled reads): on PostgreSQL without BEGIN and
    # ROLLBACK around them, two round trips that bought nothing at READ COMMITTED, where every
    # statement reads its own snapshot anyway. Never for writes: those go through `sessions`.
    reads: async_sessionmaker[AsyncSession]

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def dispose(self) -> None:
        await self.engine.dispose()


def connect(url: str | None = None, *, connect_timeout: float | None = None, pool_timeout: float | None = None,
            command_timeout: float | None = None, **engine_options: object) -> Database:
    """The timeouts (seconds, PostgreSQL only) make a database outage fail fast (R54); the server sets
    them from settings.py, commands such as the rollover leave the command timeout unset."""
    url = url or database_url()
    if url.startswith("postgresql"):
        engine_options.setdefault("pool_size", 10)
        engine_options.setdefault("max_overflow", 20)
        # A pooled connection the server dropped (a restart) is found out and replaced before use,
        # by the driver's own state (_closed_by_server), not by a ping: a ping is a round trip per
        # checkout. One that dies unseen fails its statement as an outage (R54) and is replaced.
        engine_options.setdefault("pool_pre_ping", False)
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
    if engine.dialect.name == "postgresql":
        event.listen(engine.sync_engine.pool, "checkout", _closed_by_server)
    sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    reads = sessions
    if engine.dialect.name == "postgresql":
        reads = async_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False,
                                   autoflush=False)
    return Database(engine, sessions, reads)


def _closed_by_server(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
    """A pooled asyncpg connection whose server hung up (a restart, a terminated backend) is
    closed on the driver's side as soon as the event loop reads the end of its socket: the pool
    discards it and checks out another (SQLAlchemy's pessimistic disconnect handling, without
    the round trip of pool_pre_ping)."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise exc.DisconnectionError("the server closed this connection")
