"""Test fixtures: a fresh PostgreSQL database per test session, the real app over HTTP
(httpx through the ASGI interface), tokens issued the way `bureau tokens issue` does."""

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app import create_app
from auth.clients import ALL_SCOPES, register_client
from models.db import Database, connect
from models.migrate import migrate
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.client import Api
from tests.api.mail import MailServer

DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith("postgresql") else DEFAULT_SERVER


async def create_database(prefix: str = "bureau_test") -> str:
    """A new, empty database on the test server; returns its URL."""
    admin = make_url(server_url()).set(drivername="postgresql+asyncpg", database="postgres")
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    await engine.dispose()
    return admin.set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str) -> None:
    target = make_url(url)
    engine = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
    await engine.dispose()


class StatementCounter:
    """Counts the SQL statements the app sends, to prove nested reads do not grow with data."""

    def __init__(self) -> None:
        self.count = 0
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.count += 1
        self.statements.append(statement)

    def driver(self, statement: str, parameters: Any) -> None:
        self(None, None, statement)

    def reset(self) -> None:
        self.count = 0
        self.statements.clear()


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    url = await create_database()
    await migrate(url)
    yield url
    await drop_database(url)


@pytest.fixture(scope="session")
async def database(database_url: str) -> AsyncIterator[Database]:
    db = connect(database_url)
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
def statements(database: Database) -> Iterator[StatementCounter]:
    counter = StatementCounter()
    event.listen(database.engine.sync_engine, "before_cursor_execute", counter)
    database.driver_listeners.append(counter.driver)  # R110's statements, run on asyncpg itself
    yield counter
    database.driver_listeners.remove(counter.driver)
    event.remove(database.engine.sync_engine, "before_cursor_execute", counter)


@pytest.fixture(scope="session")
async def runtime(database: Database) -> Runtime:
    return Runtime.create(database, Settings())


@pytest.fixture(scope="session")
async def http(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime=runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bureau.test") as client:
        yield client


@pytest.fixture(scope="session")
async def api(http: httpx.AsyncClient, runtime: Runtime) -> Api:
    async with runtime.database.sessions.begin() as session:
        vendor = await register_client(session, name="vendor back office", scopes=list(ALL_SCOPES))
        app_client = await register_client(session, name="partner app", scopes=list(ALL_SCOPES))
    return Api(http, runtime, vendor_client_id=vendor.client_id, app_client_id=app_client.client_id)



@pytest.fixture
def mail() -> Iterator[MailServer]:
    """A real SMTP server on loopback for this test."""
    with MailServer() as server:
        yield server
