"""R77: a token's principal costs one statement when read and none while kept; a revoked token,
a deactivated membership or user loses access at once in this process, and within
BUREAU_PRINCIPAL_CACHE_SECONDS in another (simulated by a change committed outside any session of
this process, as another server's would be)."""

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app import create_app
from auth import principals
from auth.principal import Principal
from auth.principals import PrincipalCache
from models import ids
from models.db import Database
from models.enums import FirmRole
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.client import Api, Firm, unique
from tests.api.test_oauth import new_client, tokens_for, user_with_password, viewer
from tests.conftest import StatementCounter

NODE = "query($id: ID!) { node(id: $id) { id } }"
WINDOW = 30.0


class Clock:
    """A monotonic clock the test moves (the cache's window), beside the request clock."""

    def __init__(self) -> None:
        self.at = 1000.0

    def __call__(self) -> float:
        return self.at


@pytest.fixture
async def other(api: Api, database: Database) -> AsyncIterator[tuple[Api, Clock]]:
    """A second app on the same database with a window of WINDOW seconds on a clock of the test's."""
    settings = dataclasses.replace(Settings(), principal_cache_seconds=WINDOW)
    runtime = Runtime.create(database, settings)
    clock = Clock()
    runtime.principals.clock = clock
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime=runtime)),
                                 base_url="http://bureau.test") as http:
        yield Api(http, runtime, vendor_client_id=api.vendor_client_id, app_client_id=api.app_client_id), clock


async def member_of_company(api: Api) -> tuple[Firm, str, str, str]:
    """A firm, one of its companies, a member of it (REPORTER) and the member's token."""
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    await api.subscription(firm, agreement_id, named=3)
    email = unique("kept") + "@n1.example"
    membership = (await api.invite(firm.admin, company_id, email=email))["membership"]["id"]
    return firm, company_id, membership, await api.token(email)


async def sees(api: Api, company_id: str, token: str) -> bool:
    response = await api.post(NODE, {"id": company_id}, token)
    assert response.status_code == 200, response.text
    return response.json()["data"]["node"] is not None


async def test_a_kept_principal_costs_no_statement(api: Api, statements: StatementCounter) -> None:
    firm = await api.firm()
    assert (await api.post("{ __typename }", token=firm.admin)).status_code == 200  # the signing keys are read
    token = await api.token(firm.admin_email)
    statements.reset()
    assert (await api.post("{ __typename }", token=token)).status_code == 200
    assert statements.count == 1, statements.statements  # the one statement of authentication
    statements.reset()
    assert (await api.post("{ __typename }", token=token)).status_code == 200
    assert statements.count == 0, statements.statements


async def test_without_the_cache_every_request_reads_once(database: Database, api: Api,
                                                          statements: StatementCounter) -> None:
    runtime = Runtime.create(database, dataclasses.replace(Settings(), principal_cache_seconds=0))
    firm = await api.firm()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime=runtime)),
                                 base_url="http://bureau.test") as http:
        uncached = Api(http, runtime, vendor_client_id=api.vendor_client_id, app_client_id=api.app_client_id)
        assert (await uncached.post("{ __typename }", token=firm.admin)).status_code == 200  # its keys are read
        for _ in range(2):
            statements.reset()
            assert (await uncached.post("{ __typename }", token=firm.admin)).status_code == 200
            assert statements.count == 1, statements.statements


async def test_a_revoked_token_is_refused_at_once(api: Api) -> None:
    email = await user_with_password(api)
    client_id, _ = await new_client(api)
    access = (await tokens_for(api, client_id, email))["access_token"]
    for _ in range(2):  # read, then kept
        assert (await viewer(api, access)).status_code == 200
    revoked = await api.http.post("/oauth/revoke", data={"token": access, "token_type_hint": "access_token",
                                                         "client_id": client_id})
    assert revoked.status_code == 200
    assert (await viewer(api, access)).status_code == 401


async def test_a_deactivated_membership_ends_its_access_at_once(api: Api) -> None:
    firm, company_id, membership, member = await member_of_company(api)
    assert await sees(api, company_id, member) and await sees(api, company_id, member)
    deactivated = await api.mutate("deactivateMembership", {"membershipId": membership}, "membership { status }",
                                   token=firm.admin)
    assert deactivated["membership"]["status"] == "DEACTIVATED"
    assert not await sees(api, company_id, member)


async def authentication_statements(api: Api, statements: StatementCounter, token: str) -> list[str]:
    """What a bare request sends: only authentication's statement, or nothing while kept."""
    statements.reset()
    assert (await api.post("{ __typename }", token=token)).status_code == 200
    return statements.statements[:]


async def test_a_commit_that_wrote_no_principal_s_rows_keeps_them(api: Api, statements: StatementCounter) -> None:
    """A seat change writes pools, an order, an audit row: no table a principal is read from."""
    firm = await api.firm()
    agreement_id, _ = await api.agreement(firm)
    subscription = await api.subscription(firm, agreement_id, named=3)
    token = await api.token(firm.admin_email)
    assert len(await authentication_statements(api, statements, token)) == 1
    changed = await api.mutate("changeSeats", {"subscriptionId": subscription, "licenseType": "NAMED", "seats": 4},
                               "subscription { id }", token=token)
    assert changed["userErrors"] == []
    assert await authentication_statements(api, statements, token) == []


async def test_another_user_s_rows_keep_my_principal_and_mine_do_not(api: Api, statements: StatementCounter) -> None:
    """An invitation writes a user and a membership of someone else: the inviter's principal is kept.
    A change to the member's own membership is read again for the member, whatever process kept it."""
    firm, company_id, membership, member = await member_of_company(api)
    token = await api.token(firm.admin_email)
    assert await sees(api, company_id, member) and await sees(api, company_id, token)
    await api.invite(token, company_id, email=unique("other") + "@n1.example")
    assert await authentication_statements(api, statements, token) == []
    assert await authentication_statements(api, statements, member) == []  # not the member's rows either
    changed = await api.mutate("updateMembership", {"membershipId": membership, "employeeNumber": "E-7"},
                               "membership { employeeNumber }", token=token)
    assert changed["membership"]["employeeNumber"] == "E-7", changed
    assert len(await authentication_statements(api, statements, member)) == 1
    assert await authentication_statements(api, statements, token) == []


async def test_another_process_s_revocation_holds_within_the_window(other: tuple[Api, Clock],
                                                                    database: Database) -> None:
    kept, clock = other
    firm = await kept.firm()
    token = await kept.token(firm.admin_email)
    assert (await kept.post("{ __typename }", token=token)).status_code == 200
    jti = (await kept.runtime.tokens.validate(token)).token_id
    async with database.engine.begin() as connection:  # no session of this process: as another server's
        await connection.execute(text("INSERT INTO oauth_revoked_access_tokens (jti, expires_at, revoked_at) "
                                      "VALUES (:jti, :at, :at)"), {"jti": jti, "at": datetime.now(UTC)})
    clock.at += WINDOW - 1
    assert (await kept.post("{ __typename }", token=token)).status_code == 200  # the documented window
    clock.at += 1
    assert (await kept.post("{ __typename }", token=token)).status_code == 401


async def test_another_process_s_deactivation_holds_within_the_window(other: tuple[Api, Clock],
                                                                      database: Database) -> None:
    kept, clock = other
    _, company_id, membership, member = await member_of_company(kept)
    assert await sees(kept, company_id, member)
    async with database.engine.begin() as connection:
        await connection.execute(text("UPDATE memberships SET status = 'DEACTIVATED' WHERE id = :id"),
                                 {"id": ids.decode_as(membership, "Membership")})
    assert await sees(kept, company_id, member)  # the window
    clock.at += WINDOW
    assert not await sees(kept, company_id, member)


async def test_a_kept_principal_ends_with_its_membership(other: tuple[Api, Clock], database: Database) -> None:
    """R52 on the request's clock: a membership's end ends its grant even within the window."""
    kept, _ = other
    _, company_id, membership, member = await member_of_company(kept)
    ends = datetime.now(UTC) + timedelta(days=2)
    async with database.engine.begin() as connection:
        await connection.execute(text("UPDATE memberships SET access_ends_at = :at WHERE id = :id"),
                                 {"at": ends, "id": ids.decode_as(membership, "Membership")})
    principals.changed()  # as a commit in this process would
    assert await sees(kept, company_id, member)
    kept.runtime.clock = lambda: ends + timedelta(seconds=1)
    try:
        assert not await sees(kept, company_id, member)
    finally:
        kept.runtime.clock = lambda: datetime.now(UTC)


def test_the_cache_uses_an_entry_only_while_nothing_changed() -> None:
    clock = Clock()
    cache = PrincipalCache(5, clock)
    now = datetime(2026, 12, 2, tzinfo=UTC)
    until = now + timedelta(hours=1)
    principal = Principal(client_id="c", scopes=frozenset({"firms:read"}), user_id=7)

    def keep(**changes: Any) -> None:
        cache.put("t", principal, **{"read_version": principals.version(), "now": now, "until": until, **changes})

    keep()
    got = cache.get("t", now)
    assert got == principal and got is not principal and got.grants is not principal.grants
    assert cache.get("t", now - timedelta(seconds=1)) is None  # a clock set back reads again
    keep()
    assert cache.get("t", until) is None  # the membership ended
    keep()
    principals.changed()
    assert cache.get("t", now) is None  # a commit since
    keep(read_version=principals.version() - 1)  # a commit during the read: not kept
    assert cache.get("t", now) is None
    keep()
    clock.at += 5
    assert cache.get("t", now) is None  # the window passed
    cache.seconds = 0
    keep()
    assert cache.get("t", now) is None and len(cache) == 0


async def test_requests_that_miss_together_read_the_principal_once(api: Api, statements: StatementCounter) -> None:
    """R114: a dashboard's parallel queries, or every request in flight when the entry expires."""
    firm = await api.firm()
    assert (await api.post("{ __typename }", token=firm.admin)).status_code == 200  # the signing keys are read
    token = await api.token(firm.admin_email)
    shared = api.runtime.principals.shared_reads
    statements.reset()
    answers = await asyncio.gather(*(api.post("{ __typename }", token=token) for _ in range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert statements.count == 1, statements.statements  # one read of the principal for all eight
    assert api.runtime.principals.shared_reads == shared + 7


class Reads:
    """A principal read the test lets finish, counting the reads begun."""

    def __init__(self, principal: Principal, until: datetime | None = None) -> None:
        self.principal, self.until = principal, until
        self.begun = 0
        self.go = asyncio.Event()
        self.fail: Exception | None = None

    async def __call__(self) -> tuple[Principal, datetime | None]:
        self.begun += 1
        await self.go.wait()
        if self.fail is not None:
            raise self.fail
        return self.principal, self.until


def _principal(user_id: int = 7) -> Principal:
    return Principal(client_id="c", scopes=frozenset({"firms:read"}), user_id=user_id)


async def _started(reads: Reads, count: int) -> None:
    for _ in range(100):
        if reads.begun >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{count} reads expected, {reads.begun} begun")


async def test_waiters_get_copies_of_the_one_read() -> None:
    cache, now = PrincipalCache(5, Clock()), datetime(2026, 12, 2, tzinfo=UTC)
    reads = Reads(_principal())
    tasks = [asyncio.create_task(cache.read_once("t", 7, now, reads)) for _ in range(3)]
    await _started(reads, 1)
    await asyncio.sleep(0)
    reads.go.set()
    got = await asyncio.gather(*tasks)
    assert reads.begun == 1 and all(g == reads.principal for g in got)
    assert len({id(g) for g in got}) == 3 and len({id(g.grants) for g in got}) == 3  # each its own copy
    assert cache.get("t", now) == reads.principal  # and kept


async def test_what_the_reader_does_with_its_principal_reaches_no_waiter() -> None:
    cache, now = PrincipalCache(5, Clock()), datetime(2026, 12, 2, tzinfo=UTC)
    reads = Reads(_principal())

    async def reader() -> Principal:
        principal = await cache.read_once("t", 7, now, reads)
        principal.grants.firm_roles[99] = FirmRole.FIRM_ADMIN  # before it lets the waiters run
        return principal

    leader = asyncio.create_task(reader())
    await _started(reads, 1)
    waiters = [asyncio.create_task(cache.read_once("t", 7, now, reads)) for _ in range(2)]
    await asyncio.sleep(0)
    reads.go.set()
    assert 99 in (await leader).grants.firm_roles
    assert [99 in w.grants.firm_roles for w in await asyncio.gather(*waiters)] == [False, False]
    assert reads.begun == 1


async def test_a_commit_during_the_read_is_not_waited_past() -> None:
    """A request begun after a commit that changed the user's rows reads for itself."""
    cache, now = PrincipalCache(5, Clock()), datetime(2026, 12, 2, tzinfo=UTC)
    reads = Reads(_principal(8))
    first = asyncio.create_task(cache.read_once("t", 8, now, reads))
    await _started(reads, 1)
    principals.changed(user_ids={8})
    second = asyncio.create_task(cache.read_once("t", 8, now, reads))
    await _started(reads, 2)
    reads.go.set()
    await asyncio.gather(first, second)
    assert reads.begun == 2


async def test_a_read_that_fails_or_is_cancelled_leaves_each_waiter_to_read() -> None:
    cache, now = PrincipalCache(5, Clock()), datetime(2026, 12, 2, tzinfo=UTC)
    reads = Reads(_principal())
    reads.fail = RuntimeError("the database went away")
    leader = asyncio.create_task(cache.read_once("t", 7, now, reads))
    await _started(reads, 1)
    waiter = asyncio.create_task(cache.read_once("t", 7, now, reads))
    await asyncio.sleep(0)
    reads.go.set()
    with pytest.raises(RuntimeError):
        await leader
    with pytest.raises(RuntimeError):
        await waiter  # it read for itself, and failed as itself
    assert reads.begun == 2
    reads.fail, reads.go = None, asyncio.Event()
    leader = asyncio.create_task(cache.read_once("u", 7, now, reads))
    await _started(reads, 3)
    waiter = asyncio.create_task(cache.read_once("u", 7, now, reads))
    await asyncio.sleep(0)
    leader.cancel()  # its client went away
    await asyncio.sleep(0)
    reads.go.set()
    assert await waiter == reads.principal and reads.begun == 4


async def test_a_cancelled_waiter_does_not_cancel_the_read() -> None:
    cache, now = PrincipalCache(5, Clock()), datetime(2026, 12, 2, tzinfo=UTC)
    reads = Reads(_principal())
    leader = asyncio.create_task(cache.read_once("t", 7, now, reads))
    await _started(reads, 1)
    waiter = asyncio.create_task(cache.read_once("t", 7, now, reads))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.sleep(0)
    reads.go.set()
    assert await leader == reads.principal and reads.begun == 1


async def test_no_read_is_shared_past_a_membership_s_end_or_without_the_cache() -> None:
    now = datetime(2026, 12, 2, tzinfo=UTC)
    cache = PrincipalCache(5, Clock())
    reads = Reads(_principal(), until=now + timedelta(seconds=1))
    first = asyncio.create_task(cache.read_once("t", 7, now, reads))
    await _started(reads, 1)
    late = asyncio.create_task(cache.read_once("t", 7, now + timedelta(seconds=1), reads))  # its access ended
    await asyncio.sleep(0)
    reads.go.set()
    await asyncio.gather(first, late)
    assert reads.begun == 2
    off, reads = PrincipalCache(0, Clock()), Reads(_principal())
    reads.go.set()
    await asyncio.gather(*(off.read_once("t", 7, now, reads) for _ in range(2)))
    assert reads.begun == 2
