"""Client users (R16, R17), their seat limit under concurrency (R28) and audit (R29)."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from models import ClientUser, Membership, User, ids
from models.enums import LicenseType
from tests.api.client import Api, Firm, unique

CLIENT_USER = "clientUser { id firm { id } user { id name email } companies { id } maxCompanies }"
MEMBERS = ("query($id: ID!) { company(id: $id) { members { edges { node { role licenseType status "
           "user { id email } } } } } }")
SEATS = "query($id: ID!) { node(id: $id) { ... on LicenseSubscription { seats { licenseType inUse } } } }"
FIRM_AUDIT = ("query($id: ID!) { firm(id: $id) { auditLog(first: 100) { edges { node { "
              "action subjectId clientId before after actor { id } } } } } }")
COMPANY_AUDIT = "query($id: ID!) { company(id: $id) { auditLog(first: 100) { edges { node { action subjectId } } } } }"


async def firm_with_clients(api: Api, *, client_user_seats: int, companies: int = 2, certified: bool = True,
                            named: int = 0) -> tuple[Firm, str | None, list[str]]:
    """A firm, its master subscription with CLIENT_USER seats (none when 0), and client companies in
    one agreement (with `named` NAMED seats, when asked for)."""
    firm = await api.firm(certified=certified)
    master = None
    if client_user_seats:
        master = await api.subscription(firm, firm.id, named=0, client_user=client_user_seats)
    agreement_id, first = await api.agreement(firm)
    assert first is not None
    if named:
        await api.subscription(firm, agreement_id, named=named)
    company_ids = [first] + [await api.company(firm, agreement_id) for _ in range(companies - 1)]
    return firm, master, company_ids


async def assign(api: Api, firm: Firm, company_ids: list[str], *, token: str | None = None,
                 expect_errors: bool = False, **who: Any) -> dict[str, Any]:
    if not who:
        who = {"name": "Client Person", "email": unique("client") + "@client.example"}
    return await api.mutate("assignClientUser", {"firmId": firm.id, "companyIds": company_ids, **who}, CLIENT_USER,
                            token=token or firm.admin, expect_errors=expect_errors)


async def add(api: Api, firm: Firm, client_user_id: str, company_id: str, *,
              expect_errors: bool = False) -> dict[str, Any]:
    return await api.mutate("addClientUserCompany", {"clientUserId": client_user_id, "companyId": company_id},
                            CLIENT_USER, token=firm.admin, expect_errors=expect_errors)


async def remove(api: Api, firm: Firm, client_user_id: str, company_id: str, *,
                 expect_errors: bool = False) -> dict[str, Any]:
    return await api.mutate("removeClientUserCompany", {"clientUserId": client_user_id, "companyId": company_id},
                            CLIENT_USER, token=firm.admin, expect_errors=expect_errors)


def codes(payload: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def members(api: Api, firm: Firm, company_id: str) -> list[dict[str, Any]]:
    data = await api.ok(MEMBERS, {"id": company_id}, token=firm.admin)
    return [edge["node"] for edge in data["company"]["members"]["edges"]]


async def client_user_seats_in_use(api: Api, firm: Firm, master: str) -> int:
    data = await api.ok(SEATS, {"id": master}, token=firm.admin)
    return {p["licenseType"]: p["inUse"] for p in data["node"]["seats"]}["CLIENT_USER"]  # type: ignore[no-any-return]


async def count_rows(api: Api, model: Any, *where: Any) -> int:
    async with api.runtime.database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_a_client_user_works_in_its_companies_through_client_user_memberships(api: Api) -> None:
    firm, master, (one, two, three) = await firm_with_clients(api, client_user_seats=2, companies=3)
    assert master is not None
    email = unique("Person") + "@Client.example"
    client_user = (await assign(api, firm, [one, two], name="Petra Client", email=email))["clientUser"]
    assert client_user["firm"]["id"] == firm.id and client_user["maxCompanies"] == 5
    assert client_user["user"]["email"] == email.lower()
    assert sorted(c["id"] for c in client_user["companies"]) == sorted([one, two])
    for company_id in (one, two):
        [member] = [m for m in await members(api, firm, company_id) if m["user"]["id"] == client_user["user"]["id"]]
        assert (member["role"], member["licenseType"], member["status"]) == ("REPORTER", "CLIENT_USER", "INVITED")
    assert all(m["user"]["id"] != client_user["user"]["id"] for m in await members(api, firm, three))
    assert await client_user_seats_in_use(api, firm, master) == 1
    # The person can sign in and work in those companies, and only those.
    token = await api.token(email)
    query = "query($id: ID!) { company(id: $id) { id } }"
    assert (await api.ok(query, {"id": one}, token=token))["company"]["id"] == one
    assert (await api.ok(query, {"id": three}, token=token))["company"] is None


async def test_client_user_memberships_use_no_named_seat(api: Api) -> None:
    firm, _, (one,) = await firm_with_clients(api, client_user_seats=1, companies=1, named=1)
    agreement = await api.ok("query($id: ID!) { company(id: $id) { agreement { subscription { id } } } }",
                             {"id": one}, token=firm.admin)
    subscription = agreement["company"]["agreement"]["subscription"]["id"]
    await api.invite(firm.admin, one, email=unique("named") + "@x.example")  # the only NAMED seat
    await assign(api, firm, [one])
    data = await api.ok(SEATS, {"id": subscription}, token=firm.admin)
    assert {p["licenseType"]: p["inUse"] for p in data["node"]["seats"]}["NAMED"] == 1


async def test_uncertified_firm_cannot_assign_client_users(api: Api) -> None:
    # It may still buy CLIENT_USER seats (R16).
    firm, _, (one,) = await firm_with_clients(api, client_user_seats=3, companies=1, certified=False)
    email = unique("nocert") + "@client.example"
    payload = await assign(api, firm, [one], name="Nobody", email=email, expect_errors=True)
    assert codes(payload) == [("FIRM_NOT_CERTIFIED", ["input", "firmId"])]
    assert payload["clientUser"] is None
    assert await count_rows(api, User, User.email_normalized == email) == 0


async def test_client_users_are_limited_by_the_client_user_seats_of_the_master_subscription(api: Api) -> None:
    firm, master, (one,) = await firm_with_clients(api, client_user_seats=1, companies=1)
    assert master is not None
    await assign(api, firm, [one])
    email = unique("second") + "@client.example"
    payload = await assign(api, firm, [one], name="Second", email=email, expect_errors=True)
    assert codes(payload) == [("SEAT_LIMIT_REACHED", ["input", "firmId"])]
    assert await count_rows(api, User, User.email_normalized == email) == 0
    assert await client_user_seats_in_use(api, firm, master) == 1
    await api.mutate("changeSeats", {"subscriptionId": master, "licenseType": "CLIENT_USER", "seats": 2},
                     "subscription { id }", token=firm.admin)
    await assign(api, firm, [one], name="Second", email=email)


async def test_no_master_subscription_or_no_client_user_pool_means_no_client_users(api: Api) -> None:
    firm, _, (one,) = await firm_with_clients(api, client_user_seats=0, companies=1)
    assert codes(await assign(api, firm, [one], expect_errors=True)) == [("SEAT_LIMIT_REACHED", ["input", "firmId"])]
    await api.subscription(firm, firm.id, named=2)  # a master licence without CLIENT_USER seats
    assert codes(await assign(api, firm, [one], expect_errors=True)) == [("SEAT_LIMIT_REACHED", ["input", "firmId"])]


async def test_sixth_company_is_refused(api: Api) -> None:
    firm, _, companies = await firm_with_clients(api, client_user_seats=2, companies=6)
    email = unique("six") + "@client.example"
    payload = await assign(api, firm, companies, name="Six", email=email, expect_errors=True)
    assert codes(payload) == [("CLIENT_USER_COMPANY_LIMIT", ["input", "companyIds"])]
    client_user = (await assign(api, firm, companies[:5], name="Five", email=email))["clientUser"]
    assert len(client_user["companies"]) == 5
    sixth = await add(api, firm, client_user["id"], companies[5], expect_errors=True)
    assert codes(sixth) == [("CLIENT_USER_COMPANY_LIMIT", ["input", "companyId"])]
    assert all(m["user"]["id"] != client_user["user"]["id"] for m in await members(api, firm, companies[5]))
    # Making room first lets the sixth in as the fifth.
    await remove(api, firm, client_user["id"], companies[0])
    assert len((await add(api, firm, client_user["id"], companies[5]))["clientUser"]["companies"]) == 5


async def test_parallel_company_additions_keep_the_limit_of_five(api: Api) -> None:
    firm, _, companies = await firm_with_clients(api, client_user_seats=1, companies=8)
    client_user = (await assign(api, firm, companies[:3]))["clientUser"]
    results = await asyncio.gather(*(add(api, firm, client_user["id"], c, expect_errors=True)
                                     for c in companies[3:]))
    assert sum(1 for r in results if not r["userErrors"]) == 2
    assert all(codes(r) == [("CLIENT_USER_COMPANY_LIMIT", ["input", "companyId"])] for r in results if r["userErrors"])
    user_id = ids.decode(client_user["user"]["id"])[1]
    assert await count_rows(api, Membership, Membership.user_id == user_id,
                            Membership.license_type == LicenseType.CLIENT_USER) == 5


async def test_client_user_companies_are_the_firms_own_clients(api: Api) -> None:
    firm, _, (one, two) = await firm_with_clients(api, client_user_seats=2, companies=2)
    other = await api.firm(certified=True)
    _, foreign = await api.agreement(other)
    assert foreign is not None
    email = unique("foreign") + "@client.example"
    payload = await assign(api, firm, [one, foreign], name="Foreign", email=email, expect_errors=True)
    assert codes(payload) == [("NOT_FOUND", ["input", "companyIds", "1"])]
    assert await count_rows(api, User, User.email_normalized == email) == 0
    client_user = (await assign(api, firm, [one], name="Own", email=email))["clientUser"]
    assert codes(await add(api, firm, client_user["id"], foreign, expect_errors=True)) == [
        ("NOT_FOUND", ["input", "companyId"])]
    assert codes(await add(api, firm, client_user["id"], "garbage", expect_errors=True)) == [
        ("NOT_FOUND", ["input", "companyId"])]
    # Another firm's admin does not see this firm's client users at all.
    payload = await api.mutate("addClientUserCompany", {"clientUserId": client_user["id"], "companyId": two},
                               CLIENT_USER, token=other.admin, expect_errors=True)
    assert codes(payload) == [("NOT_FOUND", ["input", "clientUserId"])]


async def test_the_input_names_one_person_and_each_company_once(api: Api) -> None:
    firm, _, (one, two) = await firm_with_clients(api, client_user_seats=2, companies=2)
    existing = (await assign(api, firm, [one]))["clientUser"]["user"]
    cases: list[tuple[dict[str, Any], list[str], tuple[str, list[str]]]] = [
        ({"userId": existing["id"], "email": existing["email"]}, [two], ("INVALID_INPUT", ["input", "userId"])),
        ({"name": "No Email"}, [two], ("IDENTITY_REQUIRED", ["input", "email"])),
        ({"email": unique("noname") + "@client.example"}, [two], ("INVALID_INPUT", ["input", "name"])),
        ({"name": "X", "email": "not an email"}, [two], ("INVALID_INPUT", ["input", "email"])),
        ({"name": "X", "email": unique("none") + "@client.example"}, [], ("INVALID_INPUT", ["input", "companyIds"])),
        ({"name": "X", "email": unique("dup") + "@client.example"}, [one, one],
         ("INVALID_INPUT", ["input", "companyIds", "1"])),
        ({"userId": "garbage"}, [two], ("NOT_FOUND", ["input", "userId"])),
    ]
    for who, companies, expected in cases:
        payload = await assign(api, firm, companies, expect_errors=True, **who)
        assert codes(payload) == [expected], who


async def test_assigning_reuses_the_user_and_the_same_person_only_once(api: Api) -> None:
    firm, _, (one, two, three) = await firm_with_clients(api, client_user_seats=3, companies=3, named=1)
    email = unique("Known") + "@client.example"
    invited = await api.invite(firm.admin, one, email=email)
    user_id = invited["membership"]["user"]["id"]
    # Already a (NAMED) member of the first company: not made a client user there.
    payload = await assign(api, firm, [two, one], name="Known", email=email.upper(), expect_errors=True)
    assert codes(payload) == [("ALREADY_MEMBER", ["input", "companyIds", "1"])]
    client_user = (await assign(api, firm, [two], name="Ignored", email=email.upper()))["clientUser"]
    assert client_user["user"]["id"] == user_id
    again = await assign(api, firm, [three], name="Known", email=email, expect_errors=True)
    assert codes(again) == [("ALREADY_MEMBER", ["input", "email"])]
    by_id = await assign(api, firm, [three], userId=user_id, expect_errors=True)
    assert codes(by_id) == [("ALREADY_MEMBER", ["input", "userId"])]
    assert codes(await add(api, firm, client_user["id"], two, expect_errors=True)) == [
        ("ALREADY_MEMBER", ["input", "companyId"])]


async def test_an_existing_user_is_assigned_by_id(api: Api) -> None:
    firm, _, (one, two) = await firm_with_clients(api, client_user_seats=1, companies=2, named=1)
    invited = await api.invite(firm.admin, one, email=unique("byid") + "@client.example")
    user_id = invited["membership"]["user"]["id"]
    client_user = (await assign(api, firm, [two], userId=user_id))["clientUser"]
    assert client_user["user"]["id"] == user_id


async def test_removing_a_company_takes_its_membership_away_and_the_last_may_go(api: Api) -> None:
    firm, master, (one, two) = await firm_with_clients(api, client_user_seats=1, companies=2)
    assert master is not None
    client_user = (await assign(api, firm, [one, two]))["clientUser"]
    person = client_user["user"]["id"]
    after = (await remove(api, firm, client_user["id"], one))["clientUser"]
    assert [c["id"] for c in after["companies"]] == [two]
    assert all(m["user"]["id"] != person for m in await members(api, firm, one))
    assert codes(await remove(api, firm, client_user["id"], one, expect_errors=True)) == [
        ("NOT_FOUND", ["input", "companyId"])]
    # The last company may go too: the client user keeps its seat and may get companies again.
    assert (await remove(api, firm, client_user["id"], two))["clientUser"]["companies"] == []
    assert await client_user_seats_in_use(api, firm, master) == 1
    assert [c["id"] for c in (await add(api, firm, client_user["id"], one))["clientUser"]["companies"]] == [one]
    assert [m["licenseType"] for m in await members(api, firm, one) if m["user"]["id"] == person] == ["CLIENT_USER"]


async def test_only_firm_admins_manage_client_users(api: Api) -> None:
    firm, _, (one, two) = await firm_with_clients(api, client_user_seats=2, companies=2, named=1)
    client_user = (await assign(api, firm, [one]))["clientUser"]
    advisor_email = unique("advisor") + "@firm.example"
    await api.mutate("addFirmStaff", {"firmId": firm.id, "name": "Advisor", "email": advisor_email,
                                      "role": "FIRM_ADVISOR"}, "firmMember { id }", token=firm.admin)
    admin_email = unique("companyadmin") + "@client.example"
    await api.invite(firm.admin, one, email=admin_email, role="ADMINISTRATOR")
    for email in (advisor_email, admin_email):
        token = await api.token(email)
        for name, input in (
            ("assignClientUser", {"firmId": firm.id, "companyIds": [two], "name": "X",
                                  "email": unique("x") + "@client.example"}),
            ("addClientUserCompany", {"clientUserId": client_user["id"], "companyId": two}),
            ("removeClientUserCompany", {"clientUserId": client_user["id"], "companyId": one}),
        ):
            query = (f"mutation($input: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $input) "
                     "{ clientUser { id } userErrors { code field } } }")
            body = await api.gql(query, {"input": input}, token=token)
            if body.get("errors"):
                assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], (email, name)
            else:  # the company administrator cannot even see the client user
                assert body["data"][name]["userErrors"][0]["code"] == "NOT_FOUND", (email, name)
    # Scopes: client users need firms:write.
    token = await api.token(firm.admin_email, scopes=["firms:read"])
    body = await api.gql("mutation($input: AssignClientUserInput!) { assignClientUser(input: $input) "
                         "{ clientUser { id } } }", {"input": {"firmId": firm.id, "companyIds": [two]}}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_parallel_client_user_assignments_take_exactly_the_free_seats(api: Api) -> None:
    seats = 3
    firm, master, (one,) = await firm_with_clients(api, client_user_seats=seats, companies=1)
    assert master is not None
    await assign(api, firm, [one])  # one seat taken: two are free
    results = await asyncio.gather(*(assign(api, firm, [one], expect_errors=True) for _ in range(8)))
    assert sum(1 for r in results if not r["userErrors"]) == seats - 1
    assert all(codes(r) == [("SEAT_LIMIT_REACHED", ["input", "firmId"])] for r in results if r["userErrors"])
    assert await client_user_seats_in_use(api, firm, master) == seats


async def test_the_same_person_assigned_in_parallel_becomes_one_client_user(api: Api) -> None:
    firm, _, (one,) = await firm_with_clients(api, client_user_seats=5, companies=1)
    email = unique("twice") + "@client.example"
    results = await asyncio.gather(*(assign(api, firm, [one], name="Twice", email=email, expect_errors=True)
                                     for _ in range(4)))
    assert sum(1 for r in results if not r["userErrors"]) == 1
    assert all(r["userErrors"][0]["code"] == "ALREADY_MEMBER" for r in results if r["userErrors"])
    user_ids = select(User.id).where(User.email_normalized == email)
    assert await count_rows(api, ClientUser, ClientUser.user_id.in_(user_ids)) == 1


async def test_an_idempotency_key_assigns_once(api: Api) -> None:
    firm, _, (one,) = await firm_with_clients(api, client_user_seats=2, companies=1)
    who: dict[str, Any] = {"name": "Once", "email": unique("once") + "@client.example", "idempotencyKey": unique("key")}
    first = await assign(api, firm, [one], **who)
    second = await assign(api, firm, [one], **who)
    assert first["clientUser"]["id"] == second["clientUser"]["id"]
    reused = await assign(api, firm, [one], expect_errors=True, **{**who, "name": "Other"})
    assert codes(reused) == [("IDEMPOTENCY_KEY_REUSED", ["input", "idempotencyKey"])]


async def test_every_client_user_change_is_audited(api: Api) -> None:
    firm, _, (one, two) = await firm_with_clients(api, client_user_seats=1, companies=2)
    admin = await api.ok("{ viewer { user { id } } }", token=firm.admin)
    client_user = (await assign(api, firm, [one]))["clientUser"]
    await add(api, firm, client_user["id"], two)
    await remove(api, firm, client_user["id"], one)
    data = await api.ok(FIRM_AUDIT, {"id": firm.id}, token=firm.admin)
    events = [e["node"] for e in data["firm"]["auditLog"]["edges"] if e["node"]["subjectId"] == client_user["id"]]
    assert sorted(e["action"] for e in events) == sorted([
        "client_user.assigned", "client_user.company_added", "client_user.company_added",
        "client_user.company_removed"])
    for event in events:
        assert event["actor"]["id"] == admin["viewer"]["user"]["id"]
        assert event["clientId"] == api.app_client_id
    [assigned] = [e for e in events if e["action"] == "client_user.assigned"]
    assert json.loads(assigned["after"]) == {"user": client_user["user"]["id"], "companies": [one]}
    [removed] = [e for e in events if e["action"] == "client_user.company_removed"]
    assert json.loads(removed["before"])["company"] == one
    # Each company's own audit log shows what happened there.
    company_log = await api.ok(COMPANY_AUDIT, {"id": one}, token=firm.admin)
    actions = [e["node"]["action"] for e in company_log["company"]["auditLog"]["edges"]
               if e["node"]["subjectId"] == client_user["id"]]
    assert sorted(actions) == ["client_user.company_added", "client_user.company_removed"]


async def test_after_a_period_end_a_client_user_counts_the_new_periods_seats(api: Api) -> None:
    """R105 (R38 for client users): a decrease of the master licence's CLIENT_USER seats scheduled for
    the period's end holds from that end on, whether or not the rollover ran."""
    from tests.api.test_sessions import clock

    with clock(api, datetime(2026, 11, 11, 10, tzinfo=UTC)) as time:
        firm, master, (one,) = await firm_with_clients(api, client_user_seats=2, companies=1)
        assert master is not None
        decreased = await api.mutate("changeSeats", {"subscriptionId": master, "licenseType": "CLIENT_USER",
                                                     "seats": 1}, "scheduledChange { effectiveOn }", token=firm.admin)
        effective = datetime.fromisoformat(decreased["scheduledChange"]["effectiveOn"]).replace(hour=10, tzinfo=UTC)
        time.now = effective + timedelta(days=1)  # past the period's end; no rollover has run
        await assign(api, firm, [one])
        refused = await assign(api, firm, [one], expect_errors=True)
    assert codes(refused) == [("SEAT_LIMIT_REACHED", ["input", "firmId"])]
