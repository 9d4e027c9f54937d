"""Bring a database to the newest schema (Alembic) and seed the default catalog.

`bureau migrate` and the first start of `bureau serve` call `migrate()`.
"""

import asyncio
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from models.catalog import Edition, EditionPrice, Feature, FeaturePrice
from models.db import connect
from models.enums import FeatureKind

ROOT = Path(__file__).resolve().parent.parent

CATALOG_VALID_FROM = date(2020, 1, 1)

# (code, name, included file storage in GB, monthly seat price per currency)
EDITIONS: list[tuple[str, str, int, dict[str, str]]] = [
    ("STANDARD", "Standard", 10, {"SEK": "149.00", "NOK": "149.00", "EUR": "14.00"}),
    ("PLUS", "Plus", 50, {"SEK": "249.00", "NOK": "249.00", "EUR": "23.00"}),
    ("PREMIUM", "Premium", 200, {"SEK": "399.00", "NOK": "399.00", "EUR": "37.00"}),
]

# (code, name, kind, monthly price per currency); a price of 0 makes a free add-on.
FEATURES: list[tuple[str, str, FeatureKind, dict[str, str]]] = [
    ("PAYROLL", "Payroll", FeatureKind.FEATURE, {"SEK": "99.00", "NOK": "99.00", "EUR": "9.00"}),
    (
        "BANK_INTEGRATION",
        "Bank integration",
        FeatureKind.INTEGRATION,
        {"SEK": "49.00", "NOK": "49.00", "EUR": "4.50"},
    ),
    ("API_ACCESS", "API access", FeatureKind.INTEGRATION, {"SEK": "0.00", "NOK": "0.00", "EUR": "0.00"}),
]

# Serialises seeding by concurrent migrators on PostgreSQL (migrations/env.py locks the schema).
SEED_LOCK_KEY = 0x62757266


def alembic_config(url: str | None = None) -> Config:
    """The project's Alembic configuration, whatever the working folder."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    # An application migrating on start keeps its own logging configuration.
    config.attributes["configure_logger"] = False
    if url is not None:
        # ConfigParser interpolates '%': escape it (percent-encoded passwords).
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def begin_immediate_on_sqlite(engine: Engine, *, foreign_keys: bool = True) -> None:
    """Give an SQLite engine real, serialised transactions; nothing for other databases.

    pysqlite begins a transaction only before a data change, so DDL and check-then-insert
    run unprotected. Instead every transaction takes the write lock up front (BEGIN
    IMMEDIATE): concurrent migrators on one file queue up instead of racing. Foreign keys
    can be switched only outside a transaction, hence here (off while tables are rebuilt).
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _driver_autocommit(dbapi_connection, connection_record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        conn.exec_driver_sql("PRAGMA busy_timeout=60000")
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# Alembic's `context` and `op` are module globals: one command at a time per process.
_alembic_lock = threading.Lock()


def _upgrade_to_head(config: Config) -> None:
    with _alembic_lock:
        command.upgrade(config, "head")


async def upgrade(url: str | None = None) -> None:
    """Bring the database to head. env.py runs its own event loop, hence the thread."""
    await asyncio.to_thread(_upgrade_to_head, alembic_config(url))


async def seed_catalog(session: AsyncSession) -> bool:
    """Add the default catalog when there are no editions; the caller commits."""
    if (await session.execute(select(Edition.id).limit(1))).first() is not None:
        return False
    # Codes first: the prices refer to them, and without relationships the session
    # would not know to insert them in that order.
    session.add_all(
        Edition(code=code, name=name, included_file_storage_gb=storage_gb) for code, name, storage_gb, _ in EDITIONS
    )
    session.add_all(Feature(code=code, name=name, kind=kind) for code, name, kind, _ in FEATURES)
    await session.flush()
    session.add_all(
        EditionPrice(edition_code=code, currency=currency, monthly_price=Decimal(price), valid_from=CATALOG_VALID_FROM)
        for code, _, _, prices in EDITIONS
        for currency, price in prices.items()
    )
    session.add_all(
        FeaturePrice(feature_code=code, currency=currency, monthly_price=Decimal(price), valid_from=CATALOG_VALID_FROM)
        for code, _, _, prices in FEATURES
        for currency, price in prices.items()
    )
    await session.flush()
    return True


async def migrate(url: str | None = None) -> None:
    """`bureau migrate`: newest schema, then the default catalog when it is empty."""
    await upgrade(url)
    database = connect(url)
    # Two instances starting together: the second waits, then finds the catalog.
    begin_immediate_on_sqlite(database.engine.sync_engine)
    try:
        async with database.sessions() as session, session.begin():
            if database.engine.dialect.name == "postgresql":
                await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEED_LOCK_KEY})
            await seed_catalog(session)
    finally:
        await database.dispose()
