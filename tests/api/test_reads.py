"""The read side: connections, node lookups, and SQL that does not grow with the data."""

from typing import Any

from tests.api.client import Api, Firm, unique
from tests.conftest import StatementCounter

NESTED = """query($id: ID!) { firm(id: $id) { name
  agreements(first: 10) { totalCount edges { node { name customerNumber
    subscription { seats { licenseType purchased inUse } }
    companies(first: 10) { totalCount edges { node { name
      members(first: 10) { totalCount edges { node { role status user { name email loginMethods } } } }
    } } } } } } } }"""


async def populate(api: Api, firm: Firm, agreements: int, companies: int, members: int) -> None:
    for _ in range(agreements):
        agreement_id, first = await api.agreement(firm)
        assert first is not None
        await api.subscription(firm, agreement_id, named=members * companies + 1)
        company_ids = [first] + [await api.company(firm, agreement_id) for _ in range(companies - 1)]
        for company_id in company_ids:
            for _ in range(members):
                await api.invite(firm.admin, company_id, email=unique("m") + "@n1.example")


async def count_statements(api: Api, statements: StatementCounter, firm: Firm) -> tuple[int, dict[str, Any]]:
    # Authenticated first: a write before may have made the principal stale (R77), and what is
    # counted is to be the read's own statements.
    await api.ok("{ __typename }", token=firm.admin)
    statements.reset()
    data = await api.ok(NESTED, {"id": firm.id}, token=firm.admin)
    return statements.count, data


async def test_nested_query_costs_the_same_number_of_statements_at_any_size(
    api: Api, statements: StatementCounter
) -> None:
    small, large = await api.firm(), await api.firm()
    await populate(api, small, agreements=1, companies=1, members=1)
    await populate(api, large, agreements=4, companies=3, members=3)
    small_count, small_data = await count_statements(api, statements, small)
    large_count, large_data = await count_statements(api, statements, large)
    assert small_data["firm"]["agreements"]["totalCount"] == 1
    assert large_data["firm"]["agreements"]["totalCount"] == 4
    members = [m for a in large_data["firm"]["agreements"]["edges"] for c in a["node"]["companies"]["edges"]
               for m in c["node"]["members"]["edges"]]
    assert len(members) == 4 * 3 * 3
    assert large_count == small_count, "\n".join(statements.statements)


async def test_pages_follow_stable_cursors(api: Api) -> None:
    firm = await api.firm()
    created = [(await api.agreement(firm, company=False))[0] for _ in range(5)]
    query = """query($id: ID!, $after: String) { firm(id: $id) { agreements(first: 2, after: $after) {
        totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { cursor node { id } } } } }"""
    seen: list[str] = []
    after = None
    while True:
        page = (await api.ok(query, {"id": firm.id, "after": after}, token=firm.admin))["firm"]["agreements"]
        assert page["totalCount"] == len(created)
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        # a row added while paging does not move the rows after the cursor
        if len(seen) == 2:
            created.append((await api.agreement(firm, company=False))[0])
    assert seen == created


async def test_search_filters_agreements_by_name_or_customer_number(api: Api) -> None:
    firm = await api.firm()
    await api.mutate("createAgreement", {"firmId": firm.id, "name": "Bageriet Nord", "billingMode": "CUSTOMER"},
                     "agreement { id }", token=firm.admin)
    await api.mutate("createAgreement", {"firmId": firm.id, "name": "Other", "customerNumber": "BAG-7",
                                         "billingMode": "CUSTOMER"}, "agreement { id }", token=firm.admin)
    await api.agreement(firm)
    data = await api.ok("""query($id: ID!) { firm(id: $id) { agreements(search: "bag") {
        totalCount edges { node { name } } } } }""", {"id": firm.id}, token=firm.admin)
    assert data["firm"]["agreements"]["totalCount"] == 2


async def test_node_and_nodes_resolve_any_visible_entity(api: Api) -> None:
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    data = await api.ok("""query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }""",
                        {"ids": [firm.id, agreement_id, company_id, "bm9wZQ", "Q29tcGFueTo5OTk5OTk5"]},
                        token=firm.admin)
    assert [n and n["__typename"] for n in data["nodes"]] == ["Firm", "Agreement", "Company", None, None]


async def test_catalog_lists_editions_in_the_callers_currency(api: Api) -> None:
    firm = await api.firm(currency="NOK")
    data = await api.ok("{ catalog { editions { code seatPrice { amount currency } } "
                        "features { code kind monthlyPrice { amount currency } } } }", token=firm.admin)
    editions = data["catalog"]["editions"]
    assert len(editions) >= 3 and {e["seatPrice"]["currency"] for e in editions} == {"NOK"}
    prices = [float(e["seatPrice"]["amount"]) for e in editions]
    assert prices == sorted(prices)
    assert {"FEATURE", "INTEGRATION"} <= {f["kind"] for f in data["catalog"]["features"]}
    vendor = await api.ok("{ catalog { editions { seatPrice { currency } } } }", token=await api.vendor())
    assert {e["seatPrice"]["currency"] for e in vendor["catalog"]["editions"]} == {"EUR"}


async def test_a_failing_field_does_not_break_its_siblings_reads(api: Api) -> None:
    firm = await api.firm()
    agreement_id, _ = await api.agreement(firm)
    await api.subscription(firm, agreement_id, named=2)
    query = """query($id: ID!) { agreement(id: $id) { companies(after: "not-a-cursor") { totalCount }
        subscription { seats { inUse } } companyCount } }"""
    for _ in range(3):
        body = await api.gql(query, {"id": agreement_id}, token=firm.admin)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # the server's connections are still good for the next request
    data = await api.ok("query($id: ID!) { agreement(id: $id) { companyCount } }", {"id": agreement_id},
                        token=firm.admin)
    assert data["agreement"]["companyCount"] == 1
