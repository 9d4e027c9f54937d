"""Concurrent sessions (R14), their seat limit under concurrency (R28) and audit (R29)."""

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.api.client import Api, Firm, unique

SESSION = "session { id startedAt expiresAt endedAt user { id } company { id } }"
T0 = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
SEATS = "query($id: ID!) { node(id: $id) { ... on LicenseSubscription { seats { licenseType inUse available } } } }"
AUDIT = ("query($id: ID!) { node(id: $id) { ... on LicenseSubscription { auditLog(first: 50) { edges { node { "
         "action subjectId clientId before after actor { id } } } } } } }")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@contextmanager
def clock(api: Api, start: datetime = T0) -> Iterator[Clock]:
    """The session-wide runtime's clock, controlled by the test and restored afterwards."""
    fake = Clock(start)
    previous = api.runtime.clock
    api.runtime.clock = lambda: fake.now
    try:
        yield fake
    finally:
        api.runtime.clock = previous


async def concurrent_company(api: Api, seats: int, users: int) -> tuple[Firm, str, str, list[str]]:
    """A company whose licence has `seats` CONCURRENT seats, and tokens of `users` CONCURRENT members."""
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    subscription_id = await api.subscription(firm, agreement_id, named=1, concurrent=seats)
    tokens = []
    for _ in range(users):
        email = unique("concurrent") + "@x.example"
        await api.invite(firm.admin, company_id, email=email, license_type="CONCURRENT")
        tokens.append(await api.token(email))
    return firm, company_id, subscription_id, tokens


async def start(api: Api, token: str, company_id: str, *, expect_errors: bool = False) -> dict[str, Any]:
    return await api.mutate("startSession", {"companyId": company_id}, SESSION, token=token,
                            expect_errors=expect_errors)


async def renew(api: Api, token: str, session_id: str, *, expect_errors: bool = False) -> dict[str, Any]:
    return await api.mutate("renewSession", {"sessionId": session_id}, SESSION, token=token,
                            expect_errors=expect_errors)


async def end(api: Api, token: str, session_id: str, *, expect_errors: bool = False) -> dict[str, Any]:
    return await api.mutate("endSession", {"sessionId": session_id}, SESSION, token=token,
                            expect_errors=expect_errors)


def codes(payload: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def concurrent_in_use(api: Api, firm: Firm, subscription_id: str) -> int:
    data = await api.ok(SEATS, {"id": subscription_id}, token=firm.admin)
    pools = {p["licenseType"]: p for p in data["node"]["seats"]}
    return int(pools["CONCURRENT"]["inUse"])


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_a_session_takes_a_concurrent_seat_until_it_ends(api: Api) -> None:
    firm, company_id, subscription_id, (ann, bob) = await concurrent_company(api, seats=1, users=2)
    with clock(api):
        first = (await start(api, ann, company_id))["session"]
        assert first["company"]["id"] == company_id and first["endedAt"] is None
        assert when(first["expiresAt"]) - when(first["startedAt"]) == timedelta(minutes=15)
        assert await concurrent_in_use(api, firm, subscription_id) == 1
        refused = await start(api, bob, company_id, expect_errors=True)
        assert codes(refused) == [("CONCURRENT_LIMIT_REACHED", ["input", "companyId"])]
        assert refused["session"] is None
        ended = (await end(api, ann, first["id"]))["session"]
        assert when(ended["endedAt"]) == T0
        assert await concurrent_in_use(api, firm, subscription_id) == 0
        assert (await start(api, bob, company_id))["session"]["id"] != first["id"]


async def test_sessions_expire_without_end_session(api: Api) -> None:
    firm, company_id, subscription_id, (ann, bob) = await concurrent_company(api, seats=1, users=2)
    with clock(api) as now:
        first = (await start(api, ann, company_id))["session"]
        now.advance(minutes=14, seconds=59)
        assert codes(await start(api, bob, company_id, expect_errors=True))[0][0] == "CONCURRENT_LIMIT_REACHED"
        assert await concurrent_in_use(api, firm, subscription_id) == 1
        now.advance(seconds=1)  # expires_at <= now: the seat is free, nobody called endSession
        assert await concurrent_in_use(api, firm, subscription_id) == 0
        second = (await start(api, bob, company_id))["session"]
        assert await concurrent_in_use(api, firm, subscription_id) == 1
        # The expired session cannot come back: its seat is taken by now.
        assert codes(await renew(api, ann, first["id"], expect_errors=True)) == [
            ("INVALID_INPUT", ["input", "sessionId"])]
        assert codes(await start(api, ann, company_id, expect_errors=True))[0][0] == "CONCURRENT_LIMIT_REACHED"
        # Ending an expired session records when it expired.
        closed = (await end(api, ann, first["id"]))["session"]
        assert when(closed["endedAt"]) == when(first["expiresAt"])
        assert second["endedAt"] is None


async def test_renewing_extends_the_time_to_live(api: Api) -> None:
    firm, company_id, subscription_id, (ann, bob) = await concurrent_company(api, seats=1, users=2)
    with clock(api) as now:
        first = (await start(api, ann, company_id))["session"]
        now.advance(minutes=10)
        renewed = (await renew(api, ann, first["id"]))["session"]
        assert when(renewed["expiresAt"]) == now.now + timedelta(minutes=15)
        assert renewed["startedAt"] == first["startedAt"]
        now.advance(minutes=10)  # past the first expiry, within the renewed one
        assert codes(await start(api, bob, company_id, expect_errors=True))[0][0] == "CONCURRENT_LIMIT_REACHED"
        assert await concurrent_in_use(api, firm, subscription_id) == 1


async def test_an_ended_session_cannot_be_renewed_and_ending_again_changes_nothing(api: Api) -> None:
    firm, company_id, subscription_id, (ann,) = await concurrent_company(api, seats=1, users=1)
    with clock(api) as now:
        session = (await start(api, ann, company_id))["session"]
        ended = (await end(api, ann, session["id"]))["session"]
        now.advance(minutes=1)
        again = await end(api, ann, session["id"])
        assert again["userErrors"] == [] and again["session"]["endedAt"] == ended["endedAt"]
        assert codes(await renew(api, ann, session["id"], expect_errors=True)) == [
            ("INVALID_INPUT", ["input", "sessionId"])]
    events = await audit_events(api, firm, subscription_id)
    assert [e["action"] for e in events].count("session.ended") == 1


async def test_starting_again_returns_the_live_session_renewed(api: Api) -> None:
    firm, company_id, subscription_id, (ann, bob) = await concurrent_company(api, seats=2, users=2)
    with clock(api) as now:
        first = (await start(api, ann, company_id))["session"]
        now.advance(minutes=5)
        again = (await start(api, ann, company_id))["session"]
        assert again["id"] == first["id"]
        assert when(again["expiresAt"]) == now.now + timedelta(minutes=15)
        assert await concurrent_in_use(api, firm, subscription_id) == 1
        await start(api, bob, company_id)
        assert await concurrent_in_use(api, firm, subscription_id) == 2


async def test_parallel_session_starts_take_exactly_the_free_seats(api: Api) -> None:
    seats, users = 4, 10
    firm, company_id, subscription_id, tokens = await concurrent_company(api, seats=seats, users=users)
    await start(api, tokens[0], company_id)  # one seat taken: three are free
    results = await asyncio.gather(*(start(api, token, company_id, expect_errors=True) for token in tokens[1:]))
    won = [r for r in results if not r["userErrors"]]
    lost = [r for r in results if r["userErrors"]]
    assert len(won) == seats - 1
    assert all(codes(r) == [("CONCURRENT_LIMIT_REACHED", ["input", "companyId"])] for r in lost)
    assert len({r["session"]["id"] for r in won}) == seats - 1
    assert await concurrent_in_use(api, firm, subscription_id) == seats


async def test_parallel_starts_by_one_user_take_one_seat(api: Api) -> None:
    firm, company_id, subscription_id, (ann,) = await concurrent_company(api, seats=3, users=1)
    results = await asyncio.gather(*(start(api, ann, company_id) for _ in range(5)))
    assert len({r["session"]["id"] for r in results}) == 1
    assert await concurrent_in_use(api, firm, subscription_id) == 1


async def test_only_concurrent_members_may_start_sessions(api: Api) -> None:
    firm, company_id, _, _ = await concurrent_company(api, seats=2, users=0)
    email = unique("named") + "@x.example"
    await api.invite(firm.admin, company_id, email=email, role="ADMINISTRATOR", license_type="NAMED")
    query = f"mutation($input: StartSessionInput!) {{ startSession(input: $input) {{ {SESSION} " \
            "userErrors { code field } } }"
    for token in (await api.token(email), firm.admin):
        body = await api.gql(query, {"input": {"companyId": company_id}}, token=token)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
        assert body["data"] is None
    # The vendor passes role checks, but a session needs a user with a CONCURRENT membership.
    payload = await start(api, await api.vendor(), company_id, expect_errors=True)
    assert codes(payload) == [("INVALID_INPUT", ["input", "companyId"])]
    # Another firm cannot even see the company.
    other = await api.firm()
    body = await api.gql(query, {"input": {"companyId": company_id}}, token=other.admin)
    assert body["data"]["startSession"]["userErrors"] == [{"code": "NOT_FOUND", "field": ["input", "companyId"]}]


async def test_a_deactivated_concurrent_membership_may_not_start_sessions(api: Api) -> None:
    from sqlalchemy import select, update

    from models import Membership, User
    from models.enums import MembershipStatus

    firm, company_id, _, _ = await concurrent_company(api, seats=2, users=0)
    email = unique("gone") + "@x.example"
    await api.invite(firm.admin, company_id, email=email, license_type="CONCURRENT")
    token = await api.token(email)
    async with api.runtime.database.sessions.begin() as session:
        user_ids = select(User.id).where(User.email_normalized == email)
        await session.execute(update(Membership).where(Membership.user_id.in_(user_ids))
                              .values(status=MembershipStatus.DEACTIVATED))
    # DEACTIVATED grants nothing: the company is out of sight, so it is not found.
    payload = await start(api, token, company_id, expect_errors=True)
    assert codes(payload) == [("NOT_FOUND", ["input", "companyId"])] and payload["session"] is None


async def test_no_concurrent_seats_means_no_sessions(api: Api) -> None:
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    email = unique("nolicence") + "@x.example"
    await api.invite(firm.admin, company_id, email=email, license_type="CONCURRENT")
    token = await api.token(email)
    # No subscription at all...
    assert codes(await start(api, token, company_id, expect_errors=True)) == [
        ("CONCURRENT_LIMIT_REACHED", ["input", "companyId"])]
    # ...or one without a CONCURRENT pool: zero seats either way.
    await api.subscription(firm, agreement_id, named=2)
    assert codes(await start(api, token, company_id, expect_errors=True)) == [
        ("CONCURRENT_LIMIT_REACHED", ["input", "companyId"])]


async def test_someone_elses_session_is_not_found(api: Api) -> None:
    firm, company_id, subscription_id, (ann, bob) = await concurrent_company(api, seats=2, users=2)
    session = (await start(api, ann, company_id))["session"]
    for token in (bob, firm.admin):  # firm staff may see the session, but it is not theirs
        assert codes(await renew(api, token, session["id"], expect_errors=True)) == [
            ("NOT_FOUND", ["input", "sessionId"])]
        assert codes(await end(api, token, session["id"], expect_errors=True)) == [
            ("NOT_FOUND", ["input", "sessionId"])]
    assert codes(await end(api, ann, "not-an-id", expect_errors=True)) == [("NOT_FOUND", ["input", "sessionId"])]
    assert await concurrent_in_use(api, firm, subscription_id) == 1


async def audit_events(api: Api, firm: Firm, subscription_id: str) -> list[dict[str, Any]]:
    data = await api.ok(AUDIT, {"id": subscription_id}, token=firm.admin)
    return [edge["node"] for edge in data["node"]["auditLog"]["edges"]]


async def test_session_starts_and_ends_are_audited(api: Api) -> None:
    firm, company_id, subscription_id, (ann,) = await concurrent_company(api, seats=1, users=1)
    viewer = await api.ok("{ viewer { user { id } } }", token=ann)
    session = (await start(api, ann, company_id))["session"]
    await end(api, ann, session["id"])
    events = {e["action"]: e for e in await audit_events(api, firm, subscription_id)}
    started, ended = events["session.started"], events["session.ended"]
    for event in (started, ended):
        assert event["subjectId"] == session["id"]
        assert event["actor"]["id"] == viewer["viewer"]["user"]["id"] == session["user"]["id"]
        assert event["clientId"] == api.app_client_id
    assert json.loads(started["after"])["company"] == company_id
    assert json.loads(ended["before"])["endedAt"] is None
    assert json.loads(ended["after"])["endedAt"] is not None


async def test_after_a_period_end_a_session_counts_the_new_periods_seats(api: Api) -> None:
    """R105 (R38 for sessions): a decrease scheduled for the period's end holds from that end on,
    whether or not the rollover ran; the period advances before a seat is taken."""
    with clock(api, datetime(2026, 11, 11, 10, tzinfo=UTC)) as time:
        firm, company_id, subscription_id, tokens = await concurrent_company(api, seats=2, users=2)
        decreased = await api.mutate("changeSeats", {"subscriptionId": subscription_id, "licenseType": "CONCURRENT",
                                                     "seats": 1}, "scheduledChange { effectiveOn }", token=firm.admin)
        effective = datetime.fromisoformat(decreased["scheduledChange"]["effectiveOn"]).replace(hour=10, tzinfo=UTC)
        time.now = effective + timedelta(days=1)  # past the period's end; no rollover has run
        await start(api, tokens[0], company_id)
        refused = await start(api, tokens[1], company_id, expect_errors=True)
    assert codes(refused) == [("CONCURRENT_LIMIT_REACHED", ["input", "companyId"])]
