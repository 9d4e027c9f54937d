"""Who needs a seat (R13): Agreement.chargeableAccesses and Agreement.chargeBreakdown."""

from datetime import timedelta
from typing import Any

from tests.api.client import Api, Firm, unique
from tests.api.test_client_users import assign, firm_with_clients
from tests.api.test_tenancy import member_token
from tests.conftest import StatementCounter

CHARGES = """query($id: ID!, $first: Int, $after: String) { agreement(id: $id) {
  chargeableAccesses { licenseType users }
  chargeBreakdown(first: $first, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { licenseType user { id email } companies { id } } } }
  subscription { seats { licenseType inUse } } } }"""


async def charges(api: Api, agreement_id: str, token: str, **page: Any) -> dict[str, Any]:
    data = await api.ok(CHARGES, {"id": agreement_id, **page}, token=token)
    agreement: dict[str, Any] = data["agreement"]
    return agreement


def lines(agreement: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    return [(edge["node"]["user"]["email"], edge["node"]["licenseType"],
             [c["id"] for c in edge["node"]["companies"]]) for edge in agreement["chargeBreakdown"]["edges"]]


def accesses(agreement: dict[str, Any]) -> dict[str, int]:
    return {a["licenseType"]: a["users"] for a in agreement["chargeableAccesses"]}


def named_in_use(agreement: dict[str, Any]) -> int:
    return next(s["inUse"] for s in agreement["subscription"]["seats"] if s["licenseType"] == "NAMED")


async def agreement_with_companies(api: Api, firm: Firm, companies: int, named: int = 10) -> tuple[str, list[str]]:
    agreement_id, first = await api.agreement(firm)
    assert first is not None
    await api.subscription(firm, agreement_id, named=named)
    return agreement_id, [first] + [await api.company(firm, agreement_id) for _ in range(companies - 1)]


async def test_a_user_in_three_companies_of_one_agreement_uses_one_seat(api: Api) -> None:
    firm = await api.firm()
    agreement_id, companies = await agreement_with_companies(api, firm, 3)
    everywhere, once = unique("all") + "@charge.example", unique("one") + "@charge.example"
    for company_id in companies:
        await api.invite(firm.admin, company_id, email=everywhere)
    await api.invite(firm.admin, companies[1], email=once)
    agreement = await charges(api, agreement_id, firm.admin)
    assert accesses(agreement) == {"NAMED": 2}
    assert named_in_use(agreement) == 2
    assert lines(agreement) == [(everywhere, "NAMED", companies), (once, "NAMED", [companies[1]])]
    assert agreement["chargeBreakdown"]["totalCount"] == 2


async def test_a_user_in_two_agreements_uses_a_seat_in_each(api: Api) -> None:
    firm = await api.firm()
    first, [first_company] = await agreement_with_companies(api, firm, 1)
    second, [second_company] = await agreement_with_companies(api, firm, 1)
    email = unique("both") + "@charge.example"
    await api.invite(firm.admin, first_company, email=email)
    await api.invite(firm.admin, second_company, email=email)
    for agreement_id, company_id in ((first, first_company), (second, second_company)):
        agreement = await charges(api, agreement_id, firm.admin)
        assert accesses(agreement) == {"NAMED": 1} and named_in_use(agreement) == 1
        assert lines(agreement) == [(email, "NAMED", [company_id])]


async def test_lapsed_invitation_frees_its_seat(api: Api) -> None:
    firm = await api.firm()
    agreement_id, [company_id] = await agreement_with_companies(api, firm, 1)
    pending = unique("pending") + "@charge.example"
    await api.invite(firm.admin, company_id, email=pending)
    assert accesses(await charges(api, agreement_id, firm.admin)) == {"NAMED": 1}
    previous = api.runtime.clock
    later = previous() + timedelta(days=api.runtime.settings.invitation_days, minutes=1)
    api.runtime.clock = lambda: later
    try:
        agreement = await charges(api, agreement_id, firm.admin)
    finally:
        api.runtime.clock = previous
    assert agreement["chargeableAccesses"] == [] and named_in_use(agreement) == 0
    assert agreement["chargeBreakdown"]["edges"] == [] and agreement["chargeBreakdown"]["totalCount"] == 0


async def test_deactivated_memberships_cover_nothing(api: Api) -> None:
    firm = await api.firm()
    agreement_id, companies = await agreement_with_companies(api, firm, 2)
    email = unique("deact") + "@charge.example"
    invited = [await api.invite(firm.admin, company_id, email=email) for company_id in companies]
    await api.mutate("deactivateMembership", {"membershipId": invited[0]["membership"]["id"]}, "membership { id }",
                     token=firm.admin)
    assert lines(await charges(api, agreement_id, firm.admin)) == [(email, "NAMED", [companies[1]])]


async def test_each_licence_type_is_counted_on_its_own(api: Api) -> None:
    firm, _, companies = await firm_with_clients(api, client_user_seats=2, companies=3, named=5)
    agreement_id = (await api.ok("query($id: ID!) { company(id: $id) { agreement { id } } }",
                                 {"id": companies[0]}, token=firm.admin))["company"]["agreement"]["id"]
    named, concurrent = unique("named") + "@charge.example", unique("conc") + "@charge.example"
    await api.invite(firm.admin, companies[0], email=named)
    # the same person may also be a concurrent user in another company: one line per licence type
    await api.invite(firm.admin, companies[1], email=named, license_type="CONCURRENT")
    for company_id in companies[:2]:
        await api.invite(firm.admin, company_id, email=concurrent, license_type="CONCURRENT")
    client = await assign(api, firm, companies[1:])
    client_email = client["clientUser"]["user"]["email"]
    agreement = await charges(api, agreement_id, firm.admin)
    assert accesses(agreement) == {"NAMED": 1, "CONCURRENT": 2, "CLIENT_USER": 1}
    assert [a["licenseType"] for a in agreement["chargeableAccesses"]] == ["NAMED", "CONCURRENT", "CLIENT_USER"]
    assert lines(agreement) == [
        (named, "NAMED", [companies[0]]),
        (named, "CONCURRENT", [companies[1]]),
        (concurrent, "CONCURRENT", companies[:2]),
        (client_email, "CLIENT_USER", companies[1:]),
    ]
    assert agreement["chargeBreakdown"]["totalCount"] == 4


async def test_breakdown_pages_follow_stable_cursors(api: Api) -> None:
    firm = await api.firm()
    agreement_id, [company_id, other_id] = await agreement_with_companies(api, firm, 2)
    emails = [unique("page") + "@charge.example" for _ in range(4)]
    for email in emails:
        await api.invite(firm.admin, company_id, email=email)
    await api.invite(firm.admin, other_id, email=emails[1], license_type="CONCURRENT")
    expected = [(emails[0], "NAMED"), (emails[1], "NAMED"), (emails[1], "CONCURRENT"), (emails[2], "NAMED"),
                (emails[3], "NAMED")]
    seen: list[tuple[str, str]] = []
    after = None
    pages = 0
    while True:
        agreement = await charges(api, agreement_id, firm.admin, first=2, after=after)
        page = agreement["chargeBreakdown"]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += [(email, kind) for email, kind, _ in lines(agreement)]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        if pages == 1:
            # a user added while paging comes last and moves nothing before it
            late = unique("late") + "@charge.example"
            await api.invite(firm.admin, company_id, email=late)
            expected.append((late, "NAMED"))
    assert seen == expected
    assert page["totalCount"] == len(expected)
    bad = await api.gql("query($id: ID!) { agreement(id: $id) { chargeBreakdown(after: \"bm9wZQ\") { totalCount } } }",
                        {"id": agreement_id}, token=firm.admin)
    assert [e["extensions"]["code"] for e in bad["errors"]] == ["BAD_USER_INPUT"]


async def test_only_who_may_read_the_subscription_sees_who_uses_the_seats(api: Api) -> None:
    firm = await api.firm()
    agreement_id, [company_id, other_id] = await agreement_with_companies(api, firm, 2)
    elsewhere = unique("else") + "@charge.example"
    await api.invite(firm.admin, other_id, email=elsewhere)
    for role in ("ADMINISTRATOR", "ACCOUNTANT"):
        token = await member_token(api, firm, company_id, role)
        agreement = await charges(api, agreement_id, token)
        assert accesses(agreement)["NAMED"] >= 2
        # the agreement's other company and its members are listed too
        assert (elsewhere, "NAMED", [other_id]) in lines(agreement)
    for role in ("APPROVER", "REPORTER"):
        token = await member_token(api, firm, company_id, role)
        data = await api.ok(CHARGES.replace("subscription { seats { licenseType inUse } }", "id"),
                            {"id": agreement_id}, token=token)
        assert data["agreement"]["chargeableAccesses"] == []
        assert data["agreement"]["chargeBreakdown"]["edges"] == []
        assert data["agreement"]["chargeBreakdown"]["totalCount"] == 0
    other = await api.firm()
    assert (await api.ok(CHARGES, {"id": agreement_id}, token=other.admin))["agreement"] is None
    without_scope = await api.token(firm.admin_email, scopes=["agreements:read", "users:read", "companies:read"])
    body = await api.gql(CHARGES.replace("subscription { seats { licenseType inUse } }", "id"),
                         {"id": agreement_id}, token=without_scope)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


NESTED = """query($id: ID!) { firm(id: $id) { agreements(first: 50) { edges { node {
  chargeableAccesses { licenseType users }
  chargeBreakdown(first: 50) { totalCount edges { cursor node { licenseType user { name email }
    companies { name } } } } } } } } }"""


async def test_charges_cost_the_same_number_of_statements_at_any_size(
    api: Api, statements: StatementCounter
) -> None:
    async def populate(firm: Firm, agreements: int, companies: int, members: int) -> None:
        for _ in range(agreements):
            agreement_id, company_ids = await agreement_with_companies(api, firm, companies,
                                                                       named=members * companies + 1)
            for company_id in company_ids:
                for _ in range(members):
                    await api.invite(firm.admin, company_id, email=unique("n") + "@n1.example")
            await api.invite(firm.admin, company_ids[-1], email=unique("c") + "@n1.example",
                             license_type="CONCURRENT")

    async def count(firm: Firm) -> tuple[int, dict[str, Any]]:
        await api.ok("{ __typename }", token=firm.admin)  # authenticated first, as kept or not (R77)
        statements.reset()
        data = await api.ok(NESTED, {"id": firm.id}, token=firm.admin)
        return statements.count, data

    small, large = await api.firm(), await api.firm()
    await populate(small, agreements=1, companies=1, members=1)
    await populate(large, agreements=3, companies=3, members=2)
    small_count, _ = await count(small)
    large_count, data = await count(large)
    found = [edge for a in data["firm"]["agreements"]["edges"] for edge in a["node"]["chargeBreakdown"]["edges"]]
    assert len(found) == 3 * (3 * 2 + 1)
    assert large_count == small_count, "\n".join(statements.statements)
