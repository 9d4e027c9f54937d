"""Engine and session factory; one AsyncSession per request or unit of work."""

import os
from dataclasses import dataclass

from sqlalchemy import event
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
        # A pooled connection the server dropped (a restart) is found out and replaced before use.
        engine_options.setdefault("pool_pre_ping", True)
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
    return Database(engine, async_sessionmaker(engine, expire_on_commit=False, autoflush=False))
