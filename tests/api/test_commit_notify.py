"""R96: the NOTIFYs a transaction notes (models.data_versions.NOTIFY, live.publish) go out
with its data-version bump, in one statement, or by themselves when there is nothing to bump;
either way in the order noted, once, and only if the transaction commits."""

import asyncio
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from models.data_versions import _TOUCHED, NOTIFY, DataVersion
from models.db import Database
from tests.conftest import StatementCounter


@pytest.fixture
async def heard(database_url: str) -> AsyncIterator[tuple[str, asyncio.Queue[str]]]:
    channel = f"bureau_test_{secrets.token_hex(4)}"
    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    listener = await asyncpg.connect(url)
    queue: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener(channel, lambda *args: queue.put_nowait(args[3]))
    try:
        yield channel, queue
    finally:
        await listener.close()


async def received(queue: asyncio.Queue[str], count: int) -> list[str]:
    return [await asyncio.wait_for(queue.get(), 10) for _ in range(count)]


async def test_notifications_ride_on_the_bump(database: Database, heard: tuple[str, asyncio.Queue[str]],
                                              statements: StatementCounter) -> None:
    channel, queue = heard
    scope = f"test:{secrets.token_hex(4)}"
    statements.reset()
    async with database.sessions.begin() as session:
        session.info[_TOUCHED] = {scope}
        session.info[NOTIFY] = [(channel, "first"), (channel, "second"), (channel, "third")]
    assert len(statements.statements) == 1 and "pg_notify" in statements.statements[0], statements.statements
    assert await received(queue, 3) == ["first", "second", "third"]
    async with database.sessions() as session:
        assert await session.scalar(select(DataVersion.version).where(DataVersion.scope == scope)) == 1


async def test_without_a_bump_they_go_by_themselves(database: Database, heard: tuple[str, asyncio.Queue[str]]) -> None:
    channel, queue = heard
    async with database.sessions.begin() as session:
        session.info[NOTIFY] = [(channel, "alone"), (channel, "after")]
    assert await received(queue, 2) == ["alone", "after"]


async def test_a_rolled_back_transaction_notifies_nothing(database: Database,
                                                          heard: tuple[str, asyncio.Queue[str]]) -> None:
    channel, queue = heard
    async with database.sessions() as session:  # one session: what a rollback dropped must not come back
        await session.begin()
        session.info[NOTIFY] = [(channel, "never")]
        await session.rollback()
        async with session.begin():
            session.info.setdefault(NOTIFY, []).append((channel, "later"))
    assert await received(queue, 1) == ["later"]
    assert queue.empty()
