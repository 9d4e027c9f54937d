"""The compiled read path (R79-R81) against the resolver path: the same answer, byte for byte,
for every kind of caller; one data statement for what compiles; the resolvers for the rest.

Each query runs twice over HTTP, once with BUREAU_COMPILED_READS on and once off, and the two
bodies must be equal (the budget's currentlyAvailable aside, which the first run drains, and
each request's own requestId).
"""

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import workloads
from tests.api.client import Api, unique
from tests.api.test_permission_matrix import CALLERS, World, world  # noqa: F401 - the shared world fixture
from tests.conftest import StatementCounter


@dataclasses.dataclass
class Run:
    body: str
    statements: list[str]


def _comparable(body: dict[str, Any]) -> str:
    extensions = body.get("extensions", {})
    extensions.get("cost", {}).get("throttleStatus", {}).pop("currentlyAvailable", None)
    extensions.pop("requestId", None)  # every request's own (R91)
    return json.dumps(body)


@pytest.fixture
def resolver_path(api: Api) -> Iterator[None]:
    yield
    api.runtime.settings = dataclasses.replace(api.runtime.settings, compiled_reads=True)


async def run(api: Api, statements: StatementCounter, query: str, variables: dict[str, Any], token: str,
              *, compiled: bool) -> Run:
    api.runtime.settings = dataclasses.replace(api.runtime.settings, compiled_reads=compiled)
    try:
        # Authenticated first: a write before makes kept principals stale (R77), and the statements
        # counted are to be the request's own.
        await api.post("{ __typename }", {}, token)
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


def is_authentication(statement: str) -> bool:
    """The one statement that reads a principal (auth.authenticate: rows of a `kind`, a UNION ALL of
    them for a user's token, the client's row alone for a client-credentials token)."""
    return " AS kind, " in statement and ("UNION ALL" in statement or "FROM oauth_clients" in statement)


async def data_statements(api: Api, statements: StatementCounter, token: str, run: Run) -> list[str]:
    """What the request sent beyond authentication. Told by its text, not by counting: any commit
    in the process (a background worker's too) makes kept principals stale (R77), so whether a
    request authenticates again is a matter of timing."""
    sent = [s for s in run.statements if not is_authentication(s)]
    assert len(run.statements) - len(sent) <= 1, run.statements
    return sent


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

NODES_LIST = """query($ids: [ID!]!) { nodes(ids: $ids) { id __typename ... on Company { name }
  ... on Membership { role user { email } } ... on Firm { agreements(first: 1) { totalCount } } } }"""

SKIPPED = """query($id: ID!, $no: Boolean!) { company(id: $id) { id name @skip(if: $no) country @include(if: $no) } }"""


def targets(w: World) -> dict[str, str]:
    return {"firm": w.firm.id, "agreement": w.agreement_id, "company": w.company_id, "company2": w.company2_id,
            "subscription": w.subscription_id, "membership": w.target_membership_id, "user": w.target_user_id,
            "other_firm": w.other_firm.id}


def all_targets(w: World) -> list[str]:
    """Every kind of ID, twice over, and one that names nothing."""
    every = list(targets(w).values())
    return [*every, *every, "bm90IGFuIGlk", w.other_firm.id]


CORPUS: list[tuple[str, str, str]] = [
    ("firm", FIRM, "firm"), ("other firm", FIRM, "other_firm"), ("company", COMPANY, "company"),
    ("company2", COMPANY, "company2"), ("by role", MEMBERS_BY_ROLE, "company"), ("agreement", AGREEMENT, "agreement"),
    *((f"node {kind}", NODES, kind) for kind in ("firm", "agreement", "company", "subscription", "membership", "user")),
    ("fragments", FRAGMENTS, "company"),
    ("nodes", NODES_LIST, "all"),
    # the benchmark's workloads, on this world's objects
    *((f"bench {w.key}", w.query, {"Dashboard": "firm", "Members": "company", "Node": "company",
                                   "CompanyPage": "firm"}[w.operation]) for w in workloads.READS if w.key != "a-big"),
]


def _variables(query: str, target: str | list[str]) -> dict[str, Any]:
    if isinstance(target, list):
        return {"ids": target}
    names = [name for name in ("$id", "$firm", "$company") if name in query]
    return {name[1:]: target for name in names}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("name", "query", "target"), CORPUS, ids=[c[0] for c in CORPUS])
async def test_the_compiled_answer_is_the_resolvers_answer(world: World, statements: StatementCounter,  # noqa: F811
                                                           name: str, query: str, target: str, caller: str) -> None:
    variables = _variables(query, all_targets(world) if target == "all" else targets(world)[target])
    compiled, _ = await both(world.api, statements, query, variables, world.tokens[caller])
    sent = await data_statements(world.api, statements, world.tokens[caller], compiled)
    assert len(sent) == 1 and sent[0].startswith("SELECT CAST(json_build_object("), sent


# ------------------------------------------------------------------ pages, filters, refusals


@dataclasses.dataclass
class Extras:
    agreement_id: str
    company_id: str
    archived_id: str
    ended_membership_id: str


@pytest.fixture(scope="session")
async def extras(world: World) -> Extras:  # noqa: F811
    """An agreement of the world's firm with an archived company, a membership whose access has
    ended (R52: it reads DEACTIVATED) and a pending seat decrease."""
    from sqlalchemy import update

    from models import Company, Membership, ids

    api, firm = world.api, world.firm
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    archived_id = await api.company(firm, agreement_id)
    await api.company(firm, agreement_id)
    await api.mutate("archiveCompany", {"companyId": archived_id}, "company { id }", token=firm.admin)
    subscription_id = await api.subscription(firm, agreement_id, named=5)
    await api.mutate("changeSeats", {"subscriptionId": subscription_id, "licenseType": "NAMED", "seats": 3},
                     "subscription { id }", token=firm.admin)
    for role in ("REPORTER", "ACCOUNTANT", "REPORTER", "ADMINISTRATOR"):
        await api.invite(firm.admin, company_id, email=unique("extra") + "@extra.example", role=role)
    ended = await api.invite(firm.admin, company_id, email=unique("ended") + "@extra.example", role="REPORTER")
    ended_id = ended["membership"]["id"]
    async with api.runtime.database.sessions.begin() as session:
        await session.execute(update(Membership).where(Membership.id == ids.decode(ended_id)[1])
                              .values(access_ends_at=api.runtime.now() - timedelta(days=1)))
        # Timestamps on a whole second and with trailing zeros: isoformat() writes them its own way.
        await session.execute(update(Company).where(Company.id == ids.decode(archived_id)[1])
                              .values(archived_at=datetime(2026, 1, 1, tzinfo=UTC)))
        await session.execute(update(Company).where(Company.id == ids.decode(company_id)[1])
                              .values(created_at=datetime(2025, 6, 1, 12, 0, 0, 10, tzinfo=UTC)))
    return Extras(agreement_id, company_id, archived_id, ended_id)


PAGES = """query($agreement: ID!, $company: ID!, $first: Int, $after: String, $archived: Boolean!, $search: String) {
  agreement(id: $agreement) { companies(first: $first, after: $after, includeArchived: $archived) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id name archivedAt createdAt } } }
    firm { agreements(first: $first, after: $after, search: $search, includeArchived: $archived) {
      totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { name } } }
      companies(first: $first, search: $search) { totalCount edges { node { name } } } } }
  company(id: $company) { members(first: $first, after: $after) { totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { role status licenseType user { name } } } }
    agreement { subscription { seats { licenseType purchased inUse available nextPeriodPurchased } } } } }"""


def _cursor(pk: int) -> str:
    import base64

    return base64.urlsafe_b64encode(f"cursor:{pk}".encode()).decode()


PAGE_VARIABLES: list[dict[str, Any]] = [
    {"first": 0}, {"first": 1}, {"first": 2}, {"first": None}, {"first": 500}, {"archived": True},
    {"first": 1, "after": _cursor(1)}, {"first": 2, "after": _cursor(3)}, {"after": _cursor(10**6)},
    {"search": "  customer  "}, {"search": "company"}, {"search": "%"}, {"search": "   "}, {"after": ""},
]
# Refused or odd arguments: the compiled path leaves them to the resolvers and their errors.
REFUSED_VARIABLES: list[dict[str, Any]] = [
    {"first": -1}, {"first": 501}, {"after": "bm90IGEgY3Vyc29y"}, {"after": "!!!"}, {"after": _cursor(2**63)},
    {"first": "many"},
]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("variables", PAGE_VARIABLES + REFUSED_VARIABLES,
                         ids=[json.dumps(v) for v in PAGE_VARIABLES + REFUSED_VARIABLES])
async def test_pages_filters_and_refusals_agree(world: World, extras: Extras, statements: StatementCounter,  # noqa: F811
                                                variables: dict[str, Any], caller: str) -> None:
    token = world.tokens[caller]
    compiled, _ = await both(world.api, statements, PAGES, {"agreement": extras.agreement_id,
                                                            "company": extras.company_id, "archived": False,
                                                            **variables}, token)
    sent = await data_statements(world.api, statements, token, compiled)
    if variables in PAGE_VARIABLES:
        assert len(sent) == 1 and sent[0].startswith("SELECT CAST(json_build_object("), sent
    else:
        if caller == "FIRM_ADMIN":  # others may not see the connection, whose arguments then go unread
            assert json.loads(compiled.body)["errors"]
        assert not any(s.startswith("SELECT CAST(json_build_object(") for s in sent), sent


async def test_an_ended_membership_reads_deactivated_on_both_paths(world: World, extras: Extras,  # noqa: F811
                                                                   statements: StatementCounter) -> None:
    query = "query($id: ID!) { node(id: $id) { ... on Membership { status } } }"
    compiled, _ = await both(world.api, statements, query, {"id": extras.ended_membership_id}, world.firm.admin)
    assert json.loads(compiled.body)["data"]["node"] == {"status": "DEACTIVATED"}


@pytest.mark.parametrize(("query", "split"), [
    # a field with a read rule of its own (auth.policy.FIELD_READS), one that is not compiled, a root
    # field that is not, introspection: the statement answers the rest, the resolvers these (R101)
    ("query($id: ID!) { firm(id: $id) { name hasResellerAgreement } }", True),
    ("query($id: ID!) { firm(id: $id) { name agreements { edges { node { name companyCount } } } } }", True),
    ("query($id: ID!) { firm(id: $id) { name } viewer { clientId } }", True),
    ("query($id: ID!) { node(id: $id) { id } __typename __schema { queryType { name } } }", True),
    ("query($id: ID!) { firm(id: $id) { agreements { edges { node { id subscription { id seats { licenseType } "
     "totalPrice { amount currency } } chargeableAccesses { licenseType users } } } } } }", True),
    # an order: a type the compiler leaves out, and nothing else to read
    ("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", False),
    ("{ viewer { clientId } }", False),
])
async def test_what_does_not_compile_is_answered_by_the_resolvers(world: World, statements: StatementCounter,  # noqa: F811
                                                                  query: str, split: bool) -> None:
    """Byte for byte as the resolvers alone answer (`both`); the statement first when there is a part
    of it that compiles, none otherwise."""
    variables = {"ids": [world.firm.id, world.order_id]} if "$ids" in query else {"id": world.firm.id}
    compiled, _ = await both(world.api, statements, query, variables, world.firm.admin)
    sent = await data_statements(world.api, statements, world.firm.admin, compiled)
    is_compiled = [s.startswith("SELECT CAST(json_build_object(") for s in sent]
    if split:
        assert is_compiled[:1] == [True] and not any(is_compiled[1:]), sent
    else:
        assert not any(is_compiled), sent


@pytest.mark.parametrize("caller", CALLERS)
async def test_a_subtree_left_to_the_resolvers_reads_alike_for_every_caller(world: World,  # noqa: F811
                                                                           statements: StatementCounter,
                                                                           caller: str) -> None:
    """R101 under every kind of caller: a compiled dashboard with fields only the resolvers answer,
    some with read rules of their own, the same answer byte for byte as the resolvers alone give."""
    query = """query($id: ID!) { firm(id: $id) { id name hasResellerAgreement
      agreements(first: 3) { edges { node { id name companyCount
        subscription { id status seats { licenseType purchased inUse } totalPrice { amount currency } }
        chargeableAccesses { licenseType users }
        companies(first: 2) { edges { node { id name members { totalCount } } } } } } } } }"""
    compiled, _ = await both(world.api, statements, query, {"id": world.firm.id}, world.tokens[caller])
    sent = await data_statements(world.api, statements, world.tokens[caller], compiled)
    assert sent[0].startswith("SELECT CAST(json_build_object("), sent  # the statement answered the rest


# ------------------------------------------------------------------ generated queries

SCALARS = {
    "Firm": ["id", "name", "organizationNumber", "country", "currency", "isCertified", "__typename"],
    "Agreement": ["id", "name", "customerNumber", "billingMode", "createdAt", "archivedAt", "__typename"],
    "Company": ["id", "name", "organizationNumber", "vatNumber", "country", "createdAt", "archivedAt", "__typename"],
    "Membership": ["id", "role", "licenseType", "status", "employeeNumber", "payType", "invitedAt", "activatedAt",
                   "invitationExpiresAt", "__typename"],
    "User": ["id", "name", "email", "status", "__typename"],
    "LicenseSubscription": ["id", "status", "channel", "billingInterval", "__typename"],
}
OBJECTS = {
    "Agreement": {"firm": "Firm", "subscription": "LicenseSubscription"},
    "Company": {"firm": "Firm", "agreement": "Agreement"},
    "Membership": {"user": "User", "company": "Company"},
}
CONNECTIONS = {
    "Firm": {"agreements": ("Agreement", ["first", "includeArchived", "search"]),
             "companies": ("Company", ["first", "includeArchived", "search"])},
    "Agreement": {"companies": ("Company", ["first", "includeArchived"])},
    "Company": {"members": ("Membership", ["first", "role"])},
}
ARGUMENTS = {"first": st.integers(0, 3).map(str), "includeArchived": st.sampled_from(["true", "false"]),
             "search": st.sampled_from(['"company"', '"1"', '" "']),
             "role": st.sampled_from(["REPORTER", "ADMINISTRATOR", "ACCOUNTANT"])}
SEATS = ["licenseType", "purchased", "inUse", "available", "nextPeriodPurchased"]


def _aliased(draw: Any, name: str) -> str:
    return f"{draw(st.sampled_from(['a', 'b']))}_{name}: {name}" if draw(st.booleans()) and name != "__typename" \
        else name


@st.composite
def selection(draw: Any, type_name: str, depth: int) -> str:
    fields = [_aliased(draw, f) for f in draw(st.lists(st.sampled_from(SCALARS[type_name]), min_size=1, max_size=4,
                                                       unique=True))]
    if depth > 0:
        for name, target in OBJECTS.get(type_name, {}).items():
            if draw(st.booleans()):
                fields.append(f"{name} {{ {draw(selection(target, depth - 1))} }}")
        for name, (target, allowed) in CONNECTIONS.get(type_name, {}).items():
            if draw(st.booleans()):
                args = [f"{a}: {draw(ARGUMENTS[a])}" for a in allowed if draw(st.booleans())]
                arguments = f"({', '.join(args)})" if args else ""
                fields.append(f"{name}{arguments} {{ {draw(connection(target, depth))} }}")
    if type_name == "LicenseSubscription" and draw(st.booleans()):
        fields.append("seats { " + " ".join(draw(st.lists(st.sampled_from(SEATS), min_size=1, unique=True))) + " }")
    if draw(st.booleans()):  # the same fields again through an inline fragment: merged as graphql-core merges
        fields.append(f"... on {type_name} {{ {fields[0]} }}")
    return " ".join(fields)


@st.composite
def connection(draw: Any, target: str, depth: int) -> str:
    parts = []
    if draw(st.booleans()):
        parts.append("totalCount")
    if draw(st.booleans()):
        info = draw(st.lists(st.sampled_from(["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"]),
                             min_size=1, unique=True))
        parts.append("pageInfo { " + " ".join(info) + " }")
    if draw(st.booleans()) or not parts:
        cursor = "cursor " if draw(st.booleans()) else ""
        parts.append(f"edges {{ {cursor}node {{ {draw(selection(target, depth - 1))} }} }}")
    return " ".join(parts)


ROOTS = {"firm": "Firm", "agreement": "Agreement", "company": "Company"}


@st.composite
def operation(draw: Any) -> tuple[str, str]:
    root = draw(st.sampled_from([*ROOTS, "node", "nodes"]))
    if root == "nodes":
        kind = draw(st.sampled_from(list(SCALARS)))
        inner = draw(selection(kind, 2))
        return f"query($id: ID!) {{ nodes(ids: [$id, $id]) {{ ... on {kind} {{ {inner} }} }} }}", kind
    if root == "node":
        kind = draw(st.sampled_from(list(SCALARS)))
        return f"query($id: ID!) {{ node(id: $id) {{ id ... on {kind} {{ {draw(selection(kind, 2))} }} }} }}", kind
    return f"query($id: ID!) {{ {root}(id: $id) {{ {draw(selection(ROOTS[root], 2))} }} }}", ROOTS[root]


def _target_of(w: World, extras: Extras, kind: str, pick: int) -> str:
    choices = {"Firm": [w.firm.id, w.other_firm.id], "Agreement": [w.agreement_id, extras.agreement_id],
               "Company": [w.company_id, extras.company_id, extras.archived_id],
               "Membership": [w.target_membership_id, extras.ended_membership_id], "User": [w.target_user_id],
               "LicenseSubscription": [w.subscription_id]}[kind]
    return choices[pick % len(choices)]


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(query=operation(), caller=st.sampled_from(CALLERS), pick=st.integers(0, 5))
async def test_generated_queries_agree(world: World, extras: Extras, statements: StatementCounter,  # noqa: F811
                                       query: tuple[str, str], caller: str, pick: int) -> None:
    document, kind = query
    token = world.tokens[caller]
    compiled, _ = await both(world.api, statements, document, {"id": _target_of(world, extras, kind, pick)}, token)
    sent = await data_statements(world.api, statements, token, compiled)
    assert len(sent) == 1 and sent[0].startswith("SELECT CAST(json_build_object("), (document, sent)


async def test_an_object_the_caller_cannot_see_is_never_compiled_into_the_answer(
        api: Api, statements: StatementCounter) -> None:
    """A broken invariant (a company in an agreement of another firm, which no mutation makes):
    the compiled path neither shows the other firm's agreement nor invents a null where the
    schema promises an object; it leaves the answer to the resolvers, whose error it is."""
    from sqlalchemy import update

    from models import Company, ids

    firm, other = await api.firm(), await api.firm()
    _, company_id = await api.agreement(firm)
    foreign_agreement, _ = await api.agreement(other)
    assert company_id is not None
    async with api.runtime.database.sessions.begin() as session:
        await session.execute(update(Company).where(Company.id == ids.decode(company_id)[1])
                              .values(agreement_id=ids.decode(foreign_agreement)[1]))
    query = "query($id: ID!) { company(id: $id) { id agreement { id name } } }"
    compiled = await run(api, statements, query, {"id": company_id}, firm.admin, compiled=True)
    body = json.loads(compiled.body)
    assert body["data"] == {"company": None}
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "json_build_object" in " ".join(compiled.statements)  # the compiled statement ran, and was not used


def test_compiled_reads_are_on_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from settings import Settings

    monkeypatch.delenv("BUREAU_COMPILED_READS", raising=False)
    assert Settings().compiled_reads is True
    monkeypatch.setenv("BUREAU_COMPILED_READS", " OFF ")
    assert Settings().compiled_reads is False
    monkeypatch.setenv("BUREAU_COMPILED_READS", "no")
    with pytest.raises(ValueError, match="BUREAU_COMPILED_READS"):
        Settings()


async def test_turned_off_every_read_runs_through_the_resolvers(world: World,  # noqa: F811
                                                                statements: StatementCounter) -> None:
    dashboard = workloads.BY_KEY["a"]
    resolved = await run(world.api, statements, dashboard.query, {"firm": world.firm.id}, world.firm.admin,
                         compiled=False)
    sent = await data_statements(world.api, statements, world.firm.admin, resolved)
    assert len(sent) > 1 and not any("json_build_object" in s for s in sent), sent


@pytest.mark.parametrize("query", ["{ __typename }", 'query { node(id: "bm90IGFuIGlk") { id } __typename }',
                                   'query { firm(id: "Q29tcGFueTox") { id } }'])
async def test_a_read_of_no_row_sends_no_statement(world: World, statements: StatementCounter,  # noqa: F811
                                                   query: str) -> None:
    compiled, _ = await both(world.api, statements, query, {}, world.firm.admin)
    assert await data_statements(world.api, statements, world.firm.admin, compiled) == []


async def test_too_many_ids_are_refused_on_both_paths(world: World, statements: StatementCounter) -> None:  # noqa: F811
    limit = world.api.runtime.settings.limits.max_node_ids
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    compiled, _ = await both(world.api, statements, query, {"ids": [world.firm.id] * (limit + 1)}, world.firm.admin)
    assert json.loads(compiled.body)["errors"][0]["extensions"]["code"] in ("TOO_MANY_IDS", "INVALID_INPUT")
    compiled, _ = await both(world.api, statements, query, {"ids": [world.firm.id] * limit}, world.firm.admin)
    assert len(json.loads(compiled.body)["data"]["nodes"]) == limit


@pytest.mark.parametrize("caller", CALLERS)
async def test_a_firms_master_licence_reads_alike(world: World, statements: StatementCounter,  # noqa: F811
                                                  caller: str) -> None:
    """A master subscription has no agreement: NAMED seats in use are 0, CLIENT_USER ones its client users."""
    found = await world.api.ok("query($id: ID!) { firm(id: $id) { masterSubscription { id } } }",
                               {"id": world.firm.id}, token=world.firm.admin)
    master = found["firm"]["masterSubscription"]["id"]
    query = """query($id: ID!) { node(id: $id) { id ... on LicenseSubscription { status channel billingInterval
      seats { licenseType purchased inUse available nextPeriodPurchased } } } }"""
    compiled, _ = await both(world.api, statements, query, {"id": master}, world.tokens[caller])
    sent = await data_statements(world.api, statements, world.tokens[caller], compiled)
    assert len(sent) == 1 and sent[0].startswith("SELECT CAST(json_build_object("), sent


async def test_an_outage_during_a_compiled_read_is_a_503_without_sql(world: World,  # noqa: F811
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled read runs in an extension; what it raises must be classified as the resolvers'
    errors are (R54, R66), never answered with the driver's text, which names the SQL."""
    import asyncpg

    from schema.compiled_reads import CompiledReads

    async def closed(self: CompiledReads) -> None:
        raise asyncpg.ConnectionDoesNotExistError("connection closed in the middle of SELECT secret_sql")

    monkeypatch.setattr(CompiledReads, "_answer", closed)
    response = await world.api.post(workloads.NODE, {"id": world.firm.id}, world.firm.admin)
    assert response.status_code == 503 and "Retry-After" in response.headers
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert "secret_sql" not in response.text


async def test_a_bug_in_an_extension_is_masked_with_a_reference(world: World,  # noqa: F811
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from schema.compiled_reads import CompiledReads

    async def broken(self: CompiledReads) -> None:
        raise RuntimeError("SELECT secret_sql FROM somewhere")

    monkeypatch.setattr(CompiledReads, "_answer", broken)
    response = await world.api.post(workloads.NODE, {"id": world.firm.id}, world.firm.admin)
    error = response.json()["errors"][0]
    assert response.status_code == 200 and error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["extensions"]["errorId"] in error["message"] and "secret_sql" not in response.text
