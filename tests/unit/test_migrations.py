"""Migrations: the schema equals the models on both databases, audit events are
append-only (R29), and `bureau migrate` seeds the catalog once (DESIGN section 6)."""

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, func, inspect, make_url, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

import models
from models.catalog import Edition, EditionPrice, Feature, FeaturePrice
from models.db import connect
from models.enums import FeatureKind
from models.migrate import (
    EDITIONS,
    ROOT,
    alembic_config,
    migrate,
    seed_catalog,
    upgrade,
)

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
CURRENCIES = {"SEK", "NOK", "EUR"}


# -- databases ---------------------------------------------------------------------------------


def _pg_admin(statement: str) -> None:
    async def run() -> None:
        engine = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    # Called from async tests too: a loop of its own, in a thread of its own.
    with ThreadPoolExecutor(1) as executor:
        executor.submit(asyncio.run, run()).result()


@pytest.fixture
def pg_database() -> Iterator[Callable[[], str]]:
    """Makes empty scratch databases on the test server; drops them afterwards."""
    names: list[str] = []

    def make() -> str:
        name = f"bureau_mig_{uuid.uuid4().hex[:12]}"
        _pg_admin(f'CREATE DATABASE "{name}"')
        names.append(name)
        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    yield make
    for name in names:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Callable[[], str]:
    counter = iter(range(1000))
    return lambda: f"sqlite+aiosqlite:///{tmp_path / f'bureau{next(counter)}.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def new_database(request: pytest.FixtureRequest) -> Callable[[], str]:
    """An empty database of each kind the server runs on."""
    fixture = "sqlite_database" if request.param == "sqlite" else "pg_database"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


async def _run_sync(url: str, fn: Callable[[Connection], Any]) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _diff_to_models(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, models.Base.metadata))


# -- the schema --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_upgrade_gives_exactly_the_models_schema(new_database: Callable[[], str]) -> None:
    url = new_database()
    await upgrade(url)
    assert await _run_sync(url, _diff_to_models) == []


def _pg_catalog(conn: Connection) -> dict[str, set[tuple[Any, ...]]]:
    def rows(sql: str) -> set[tuple[Any, ...]]:
        return {tuple(row) for row in conn.execute(text(sql))}

    return {
        "columns": rows(
            # Not ordinal_position: a column added by a later migration comes last.
            "SELECT table_name, column_name, data_type, character_maximum_length,"
            " numeric_precision, numeric_scale, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = 'public'"
            " AND table_name <> 'alembic_version'"
        ),
        "constraints": rows(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> 'alembic_version'"
        ),
        "indexes": rows(
            "SELECT tablename, indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ),
    }


def _sqlite_catalog(conn: Connection) -> dict[str, set[tuple[Any, ...]]]:
    # CREATE TABLE texts, one clause a line, so that only the order of constraints may differ.
    catalog: dict[str, set[tuple[Any, ...]]] = {"tables": set(), "indexes": set()}
    for kind, name, sql in conn.execute(
        text(
            "SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', 'index')"
            " AND name NOT IN ('alembic_version', 'sqlite_sequence') AND sql IS NOT NULL"
        )
    ):
        if kind == "table":
            body = sql.strip()[sql.index("(") + 1 : -1]
            catalog["tables"] |= {(name, clause.strip()) for clause in re.split(r",\s*\n", body)}
        else:
            catalog["indexes"].add((name, sql))
    return catalog


@pytest.mark.asyncio
async def test_migrated_database_names_every_constraint_as_create_all_does(
    new_database: Callable[[], str],
) -> None:
    # compare_metadata skips CHECK constraints (one per enum column); the catalogs do not.
    migrated, created = new_database(), new_database()
    await upgrade(migrated)
    await _run_sync(created, models.Base.metadata.create_all)
    catalog = _pg_catalog if migrated.startswith("postgresql") else _sqlite_catalog
    assert await _run_sync(migrated, catalog) == await _run_sync(created, catalog)


@pytest.mark.asyncio
async def test_downgrade_removes_everything_and_upgrade_works_again(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    await upgrade(url)
    await asyncio.to_thread(command.downgrade, alembic_config(url), "base")

    def leftovers(conn: Connection) -> dict[str, list[str]]:
        found = {"tables": [t for t in inspect(conn).get_table_names() if t != "alembic_version"]}
        if conn.dialect.name == "sqlite":
            found["triggers"] = list(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
        else:
            found["functions"] = list(
                conn.scalars(text("SELECT proname FROM pg_proc WHERE proname = 'audit_events_append_only'"))
            )
        return found

    assert await _run_sync(url, leftovers) == {
        "tables": [],
        "triggers" if url.startswith("sqlite") else "functions": [],
    }
    await upgrade(url)
    assert await _run_sync(url, _diff_to_models) == []


@pytest.mark.asyncio
async def test_upgrade_works_from_any_working_folder(
    sqlite_database: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = sqlite_database()
    await upgrade(url)
    assert await _run_sync(url, _diff_to_models) == []
    assert Path(alembic_config().get_main_option("script_location") or "") == ROOT / "migrations"


def test_alembic_config_takes_the_callers_url() -> None:
    url = "postgresql+asyncpg://bureau:p%40ss@db.example:5432/bureau"
    assert alembic_config(url).get_main_option("sqlalchemy.url") == url
    assert alembic_config().get_main_option("sqlalchemy.url") is None


# -- R29: audit events are append-only -----------------------------------------------------------


@pytest.mark.asyncio
async def test_audit_events_refuse_update_and_delete(new_database: Callable[[], str]) -> None:
    url = new_database()
    await upgrade(url)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO audit_events (occurred_at, action, summary)"
                    " VALUES (CURRENT_TIMESTAMP, 'seats.change', 'ten')"
                )
            )
        refused = [
            "UPDATE audit_events SET summary = 'rewritten'",
            "DELETE FROM audit_events",
        ]
        if engine.dialect.name == "postgresql":
            refused.append("TRUNCATE audit_events")
        for statement in refused:
            with pytest.raises(DBAPIError, match="append-only"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT action, summary FROM audit_events"))).all()
        assert [tuple(row) for row in rows] == [("seats.change", "ten")]
    finally:
        await engine.dispose()


# -- bureau migrate: the default catalog ---------------------------------------------------------


async def _catalog(url: str) -> dict[str, Any]:
    database = connect(url)
    try:
        async with database.sessions() as session:
            editions = (await session.scalars(select(Edition))).all()
            edition_prices = (await session.scalars(select(EditionPrice))).all()
            features = (await session.scalars(select(Feature))).all()
            feature_prices = (await session.scalars(select(FeaturePrice))).all()
            return {
                "editions": {e.code: e.included_file_storage_gb for e in editions},
                "edition_prices": {(p.edition_code, p.currency): p.monthly_price for p in edition_prices},
                "features": {f.code: f.kind for f in features},
                "feature_prices": {(p.feature_code, p.currency): p.monthly_price for p in feature_prices},
            }
    finally:
        await database.dispose()


@pytest.mark.asyncio
async def test_migrate_twice_seeds_the_catalog_once(new_database: Callable[[], str]) -> None:
    url = new_database()
    await migrate(url)
    first = await _catalog(url)
    await migrate(url)
    assert await _catalog(url) == first

    assert len(first["editions"]) >= 3
    for code in first["editions"]:
        prices = {c: p for (e, c), p in first["edition_prices"].items() if e == code}
        assert set(prices) >= CURRENCIES
        assert all(isinstance(p, Decimal) and p > 0 for p in prices.values())
    for kind in FeatureKind:
        paid = [
            code
            for code, k in first["features"].items()
            if k == kind and all(first["feature_prices"].get((code, c), 0) > 0 for c in CURRENCIES)
        ]
        assert paid, f"no {kind} priced above 0 in {CURRENCIES}"
    assert all((f, c) in first["feature_prices"] for f in first["features"] for c in CURRENCIES)


@pytest.mark.asyncio
async def test_seed_catalog_leaves_an_existing_catalog_alone(sqlite_database: Callable[[], str]) -> None:
    url = sqlite_database()
    await upgrade(url)
    database = connect(url)
    try:
        async with database.sessions() as session, session.begin():
            session.add(Edition(code="OWN", name="Own", included_file_storage_gb=1))
        async with database.sessions() as session, session.begin():
            assert await seed_catalog(session) is False
            assert await session.scalar(select(func.count()).select_from(Edition)) == 1
        async with database.sessions() as session:
            assert await seed_catalog(session) is False
    finally:
        await database.dispose()


def test_concurrent_migrators_apply_the_schema_and_the_catalog_once(
    new_database: Callable[[], str],
) -> None:
    # Several instances (processes) starting at once on one database.
    url = new_database()
    script = "import asyncio, sys; from models.migrate import migrate; asyncio.run(migrate(sys.argv[1]))"
    processes = [
        subprocess.Popen([sys.executable, "-c", script, url], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], errors
    # Codes are unique: a second seeding would have failed its process, not doubled rows.
    assert set(asyncio.run(_catalog(url))["editions"]) == {code for code, *_ in EDITIONS}
    assert asyncio.run(_run_sync(url, _diff_to_models)) == []
