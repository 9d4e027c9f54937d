"""R73: the hooks every commit needs (data versions R82, live events R72, the principals' version
R77) are registered on each Database's own session factory, by name, never on SQLAlchemy's global
Session: a session made another way carries none of them, and installing twice changes nothing."""

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from auth import principals
from live import publish
from models import Company, data_versions, ids
from models.data_versions import DataVersion, firm_scope
from models.db import add_hooks, session_class
from resolvers.runtime import Runtime
from tests.api.client import Api, unique

HOOKS: list[tuple[str, Callable[..., Any]]] = [
    ("before_commit", data_versions._bump), ("after_flush", data_versions._collect),
    ("do_orm_execute", data_versions._bulk), ("before_commit", publish._announce), ("after_flush", publish._collect),
    ("after_commit", publish._committed), ("after_commit", principals.changed)]


async def test_r73_the_hooks_are_on_the_factory_and_not_on_every_session(runtime: Runtime) -> None:
    own = session_class(runtime.database.sessions)
    for name, hook in HOOKS:
        assert event.contains(own, name, hook), (name, hook)
        assert not event.contains(Session, name, hook), (name, hook)


async def test_r73_a_session_of_another_factory_bumps_nothing(api: Api, runtime: Runtime) -> None:
    firm = await api.firm()
    _, company_id = await api.agreement(firm)
    pk = ids.decode_as(company_id or "", "Company")
    scope = firm_scope(ids.decode_as(firm.id, "Firm") or 0)

    async def version() -> int:
        async with runtime.database.sessions() as session:
            return int(await session.scalar(select(DataVersion.version).where(DataVersion.scope == scope)) or 0)

    async def rename(session: AsyncSession) -> None:
        async with session.begin():
            await session.execute(update(Company).where(Company.id == pk).values(name=unique("Renamed ")))

    for install in (data_versions.install, publish.install, principals.install):
        install(runtime.database.sessions)  # again: each hook still runs once a commit
    before, principal_version = await version(), principals.version()
    async with runtime.database.sessions() as session:
        await rename(session)
    assert await version() == before + 1 and principals.version() == principal_version + 1

    before, principal_version = await version(), principals.version()
    async with AsyncSession(runtime.database.engine) as plain:  # SQLAlchemy's own Session class underneath
        await rename(plain)
    assert await version() == before and principals.version() == principal_version


def test_r73_hooks_never_go_on_the_global_session(runtime: Runtime) -> None:
    plain = async_sessionmaker(runtime.database.engine)
    with pytest.raises(ValueError, match="own session class"):
        add_hooks(plain, {"before_commit": lambda session: None})
    with pytest.raises(ValueError):
        publish.install(plain)
