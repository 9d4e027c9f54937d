"""The compiled read path (R79-R81) against the resolver path: the same answer, byte for byte,
for every kind of caller; one data statement for what compiles; the resolvers for the rest.

Each query runs twice over HTTP, once with BUREAU_COMPILED_READS on and once off, and the two
bodies must be equal (the budget's currentlyAvailable aside, which the first run drains).
"""

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

from bench import workloads
from tests.api.client import Api
from tests.api.test_permission_matrix import CALLERS, World, world  # noqa: F401 - the shared world fixture
from tests.conftest import StatementCounter


@dataclasses.dataclass
class Run:
    body: str
    statements: list[str]


def _comparable(body: dict[str, Any]) -> str:
    cost = body.get("extensions", {}).get("cost", {})
    cost.get("throttleStatus", {}).pop("currentlyAvailable", None)
    return json.dumps(body)


@pytest.fixture
def resolver_path(api: Api) -> Iterator[None]:
    yield
    api.runtime.settings = dataclasses.replace(api.runtime.settings, compiled_reads=True)


async def run(api: Api, statements: StatementCounter, query: str, variables: dict[str, Any], token: str,
              *, compiled: bool) -> Run:
    api.runtime.settings = dataclasses.replace(api.runtime.settings, compiled_reads=compiled)
    try:
        statements.reset()
        response = await api.post(query, variables, token)
        return Run(_comparable(response.json()), list(statements.statements))
    finally:
        api.runtime.settings = dataclasses.replace(api.runtime.settings, compiled_reads=True)


async def both(api: Api, statements: StatementCounter, query: str, variables: dict[str, Any],
               token: str) -> tuple[Run, Run]:
    compiled = await run(api, statements, query, variables, token, compiled=True)
    resolved = await run(api, statements, query, variables, token, compiled=False)
    assert compiled.body == resolved.body, f"{query}\n{variables}\ncompiled: {compiled.body}\nresolved: {resolved.body}"
    return compiled, resolved


async def data_statements(api: Api, statements: StatementCounter, token: str, run: Run) -> list[str]:
    """What the request sent beyond authentication: those of a read that needs no data (viewer)."""
    statements.reset()
    await api.post("{ viewer { clientId } }", {}, token)
    authentication = len(statements.statements)
    return run.statements[authentication:]


# ------------------------------------------------------------------ the corpus

FIRM = """query($id: ID!) { firm(id: $id) { id name organizationNumber country currency isCertified __typename
  agreements(first: 3) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id name customerNumber billingMode createdAt archivedAt
      subscription { id status channel billingInterval
        seats { licenseType purchased inUse available nextPeriodPurchased } }
      companies(first: 1) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id name } } } } } }
  companies(first: 2, includeArchived: true) { totalCount edges { node { id name vatNumber createdAt } } } } }"""

COMPANY = """query($id: ID!) { company(id: $id) { id name organizationNumber vatNumber country createdAt archivedAt
  firm { id name } agreement { id name firm { id } }
  members(first: 100) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id role licenseType status employeeNumber payType invitedAt activatedAt
      invitationExpiresAt user { id name email status } company { id } } } } } }"""

MEMBERS_BY_ROLE = """query($id: ID!) { company(id: $id) { members(role: REPORTER, first: 2) { totalCount
  edges { node { role user { email } } } } } }"""

AGREEMENT = """query($id: ID!) { agreement(id: $id) { id name firm { name } subscription { status seats { inUse } }
  companies { totalCount edges { node { id name agreement { id } } } } } }"""

NODES = """query($id: ID!) { node(id: $id) { id __typename ... on Company { name } ... on Agreement { name }
  ... on Firm { name } ... on Membership { role status } ... on User { name email }
  ... on LicenseSubscription { subscriptionStatus: status seats { licenseType inUse } } } }"""

FRAGMENTS = """query($id: ID!) { a: company(id: $id) { ...C n: name } b: company(id: $id) { id }
  company(id: $id) { ... on Company { name } ...C } }
fragment C on Company { id name members(first: 1) { edges { node { id } } } }"""

SKIPPED = """query($id: ID!, $no: Boolean!) { company(id: $id) { id name @skip(if: $no) country @include(if: $no) } }"""


def targets(w: World) -> dict[str, str]:
    return {"firm": w.firm.id, "agreement": w.agreement_id, "company": w.company_id, "company2": w.company2_id,
            "subscription": w.subscription_id, "membership": w.target_membership_id, "user": w.target_user_id,
            "other_firm": w.other_firm.id}


CORPUS: list[tuple[str, str, str]] = [
    ("firm", FIRM, "firm"), ("other firm", FIRM, "other_firm"), ("company", COMPANY, "company"),
    ("company2", COMPANY, "company2"), ("by role", MEMBERS_BY_ROLE, "company"), ("agreement", AGREEMENT, "agreement"),
    *((f"node {kind}", NODES, kind) for kind in ("firm", "agreement", "company", "subscription", "membership", "user")),
    ("fragments", FRAGMENTS, "company"),
    # the benchmark's workloads, on this world's objects
    *((f"bench {w.key}", w.query, {"Dashboard": "firm", "Members": "company", "Node": "company",
                                   "CompanyPage": "firm"}[w.operation]) for w in workloads.READS if w.key != "a-big"),
]


def _variables(query: str, target: str) -> dict[str, Any]:
    names = [name for name in ("$id", "$firm", "$company") if name in query]
    return {name[1:]: target for name in names}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("name", "query", "target"), CORPUS, ids=[c[0] for c in CORPUS])
async def test_the_compiled_answer_is_the_resolvers_answer(world: World, statements: StatementCounter,  # noqa: F811
                                                           name: str, query: str, target: str, caller: str) -> None:
    variables = _variables(query, targets(world)[target])
    compiled, _ = await both(world.api, statements, query, variables, world.tokens[caller])
    sent = await data_statements(world.api, statements, world.tokens[caller], compiled)
    assert len(sent) == 1 and sent[0].startswith("SELECT CAST(json_build_object("), sent
