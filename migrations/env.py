"""Alembic environment: async engines, the models' metadata, one transaction per run.

The URL is the config's sqlalchemy.url when a caller set one (models.migrate, tests),
else DATABASE_URL through models.db.database_url().
"""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import models
from models.db import database_url
from models.migrate import begin_immediate_on_sqlite

config = context.config

# Only the alembic command line configures logging; an application that migrates
# on start (bureau serve, bureau migrate) keeps its own logging set-up.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = models.Base.metadata

# Any constant will do: concurrent migrators on one PostgreSQL database queue on it.
MIGRATION_LOCK_KEY = 0x62757265  # "bure"


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or database_url()


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters tables by copying them; batch mode does that for later migrations.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def do_run_migrations(connection: Connection) -> None:
    # One explicit transaction around the whole run: alembic then treats it as external
    # and every migration, plus the version stamp, commits or rolls back together.
    with connection.begin():
        dialect = connection.dialect.name
        if dialect == "postgresql":
            # Several instances starting at once: the others wait, then find head applied.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        _configure(connection)
        context.run_migrations()
        if dialect == "sqlite":
            # Foreign keys are off while tables are rebuilt; verify them before committing.
            problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RuntimeError(f"foreign key violations after migration: {problems[:5]}")


async def run_async_migrations(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    # Atomic migrations on SQLite too, one process at a time; foreign keys off while
    # tables are rebuilt (checked before committing, above).
    begin_immediate_on_sqlite(engine.sync_engine, foreign_keys=False)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        # A caller's own sync connection (e.g. in AsyncConnection.run_sync): a transaction
        # the caller began is the caller's to commit.
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(run_async_migrations(_url()))


def run_migrations_offline() -> None:
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
