"""Keyset pages (R86): one parent's page, many parents' pages in one statement (LATERAL on
PostgreSQL) and the pages after a cursor give the same rows, in id order, with the cursors
clients already hold."""

import base64
from typing import Any

from models import ids
from tests.api.client import Api
from tests.api.test_sqlite_smoke import sqlite_api  # noqa: F401 (a fixture)
from tests.conftest import StatementCounter

PAGES = """query($firm: ID!, $first: Int!, $after: String) { firm(id: $firm) {
  agreements(first: 10) { edges { node { id
    companies(first: $first, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage }
      totalCount } } } } } }"""
ONE = """query($id: ID!, $first: Int!, $after: String) { agreement(id: $id) {
  companies(first: $first, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage }
    totalCount } } }"""


def _pk(company_id: str) -> int:
    pk = ids.decode_as(company_id, "Company")
    assert pk is not None
    return pk


def _pages(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["node"]["id"]: e["node"]["companies"] for e in data["firm"]["agreements"]["edges"]}


async def test_many_parents_page_as_one_parent_does_through_every_cursor(
    api: Api, statements: StatementCounter
) -> None:
    statements.reset()
    await check_pages(api, statements)


async def test_sqlite_pages_many_parents_alike(sqlite_api: Api) -> None:  # noqa: F811 (the fixture)
    """SQLite has no LATERAL: its row_number() path gives the same pages."""
    await check_pages(sqlite_api, None)


async def check_pages(api: Api, statements: StatementCounter | None) -> None:
    firm = await api.firm()
    companies: dict[str, list[str]] = {}
    for count in (0, 1, 3, 5):
        agreement_id, first_company = await api.agreement(firm, company=count > 0)
        companies[agreement_id] = [first_company] if first_company else []
        for _ in range(count - 1):
            companies[agreement_id].append(await api.company(firm, agreement_id))
    for agreement_id, made in companies.items():
        made.sort(key=_pk)

    if statements is not None:
        statements.reset()
    batched = _pages(await api.ok(PAGES, {"firm": firm.id, "first": 2}, token=firm.admin))
    if statements is not None:  # PostgreSQL: every agreement's page in one LATERAL statement
        assert sum("companies" in s and "LATERAL" in s for s in statements.statements) == 1
    for agreement_id, made in companies.items():
        page = batched[agreement_id]
        assert [e["node"]["id"] for e in page["edges"]] == made[:2]
        assert page["pageInfo"] == {"hasNextPage": len(made) > 2, "hasPreviousPage": False}
        assert page["totalCount"] == len(made)
        # the cursor is the row's id, as clients hold it
        assert [base64.urlsafe_b64decode(e["cursor"]).decode() for e in page["edges"]] == \
            [f"cursor:{_pk(c)}" for c in made[:2]]
        # the same page of that agreement alone (one parent: a plain LIMIT), then each next page
        alone = (await api.ok(ONE, {"id": agreement_id, "first": 2}, token=firm.admin))["agreement"]["companies"]
        assert alone == page
        seen, after = [e["node"]["id"] for e in alone["edges"]], alone["edges"][-1]["cursor"] if made else None
        while after is not None:
            page = (await api.ok(ONE, {"id": agreement_id, "first": 2, "after": after},
                                 token=firm.admin))["agreement"]["companies"]
            assert page["pageInfo"]["hasPreviousPage"] is True
            seen += [e["node"]["id"] for e in page["edges"]]
            after = page["edges"][-1]["cursor"] if page["pageInfo"]["hasNextPage"] else None
        assert seen == made

    # after a cursor, for every parent at once: each agreement's rows past that id
    cursor = batched[next(a for a, m in companies.items() if len(m) == 5)]["edges"][0]["cursor"]
    past = _pk(companies[next(a for a, m in companies.items() if len(m) == 5)][0])
    after_all = _pages(await api.ok(PAGES, {"firm": firm.id, "first": 2, "after": cursor}, token=firm.admin))
    for agreement_id, made in companies.items():
        rest = [c for c in made if _pk(c) > past]
        assert [e["node"]["id"] for e in after_all[agreement_id]["edges"]] == rest[:2]
        assert after_all[agreement_id]["pageInfo"]["hasNextPage"] == (len(rest) > 2)


async def test_total_count_is_read_only_when_selected(api: Api, statements: StatementCounter) -> None:
    firm = await api.firm()
    agreement_id, _ = await api.agreement(firm)
    query = "query($id: ID!) { agreement(id: $id) { companies(first: 5) { edges { node { id } } %s } } }"
    statements.reset()
    await api.ok(query % "", {"id": agreement_id}, token=firm.admin)
    assert not any("count(" in s for s in statements.statements)
    statements.reset()
    await api.ok(query % "totalCount", {"id": agreement_id}, token=firm.admin)
    assert sum("count(" in s for s in statements.statements) == 1
