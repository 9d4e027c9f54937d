"""Tenancy under random traffic (hypothesis). Actors of three firms, in every firm and company
role and with every token kind (user tokens with all or read-only scopes, a BankID-only user,
a firm's client-credentials token, the vendor), send random sequences of reads and mutations
aimed at any object of any firm. After every step:

- no response holds an object the actor may not see, judged by this file's own reading of
  DESIGN.md section 3 over the grants it tracks itself (not by `auth.visibility`);
- no request failed with a 500 or an unexpected error;
- seats in use never exceed seats purchased, counted here in plain SQL;
- the audit log grew by exactly one event per successful change, and by none otherwise.

The world (firms, agreements, people, tokens) is built once into a template database; every
example runs on a fresh copy of it (CREATE DATABASE ... TEMPLATE), so examples are independent
and hypothesis can replay and shrink a failure. BUREAU_TENANCY_EXAMPLES scales the run
(default 20 examples of up to 12 steps).
"""

import copy
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app import create_app
from auth.clients import ALL_SCOPES, register_client
from models import (
    Agreement,
    AgreementTransfer,
    AuditEvent,
    ClientUser,
    Company,
    Firm,
    FirmMember,
    Invoice,
    LicenseSession,
    Membership,
    Order,
    Subscription,
)
from models import ids as global_ids
from models.db import connect
from models.migrate import migrate
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.client import USER_SCOPES, Api, new_pin, unique
from tests.conftest import create_database, drop_database

EXAMPLES = int(os.environ.get("BUREAU_TENANCY_EXAMPLES", "20"))
READ_SCOPES = [s for s in USER_SCOPES if s.endswith(":read")]
ROLES = ["REPORTER", "APPROVER", "ADMINISTRATOR", "ACCOUNTANT"]
SUBSCRIPTION_READERS = {"ADMINISTRATOR", "ACCOUNTANT"}
MODELS: dict[str, Any] = {
    "Firm": Firm, "Agreement": Agreement, "Company": Company, "Membership": Membership,
    "LicenseSubscription": Subscription, "Order": Order, "Invoice": Invoice, "AuditEvent": AuditEvent,
    "LicenseSession": LicenseSession, "FirmMember": FirmMember, "ClientUser": ClientUser,
    "AgreementTransfer": AgreementTransfer,
}


@dataclass
class Actor:
    name: str
    token: str
    user_id: int | None = None
    email: str | None = None
    staff_firm: int | None = None  # firm staff, or the firm a client-credentials client acts for
    firm_admin: bool = False
    vendor: bool = False


@dataclass
class Access:
    """A membership as this test knows it: the model the oracle reads grants from."""

    user_id: int
    company_id: int
    role: str
    active: bool


@dataclass
class World:
    api: Api
    actors: list[Actor]
    firms: list[str]
    agreements: list[str]
    companies: list[str]
    subscriptions: list[str]
    users: list[str]
    memberships: dict[str, Access] = field(default_factory=dict)
    sessions: list[str] = field(default_factory=list)
    firm_of: dict[str, int] = field(default_factory=dict)  # global ID -> the firm it was made in

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"World({len(self.actors)} actors, {len(self.companies)} companies)"

    def grants(self, actor: Actor) -> dict[int, str]:
        return {a.company_id: a.role for a in self.memberships.values() if a.user_id == actor.user_id and a.active}

    def known_ids(self) -> list[str]:
        return [*self.firms, *self.agreements, *self.companies, *self.subscriptions, *self.users,
                *self.memberships, *self.sessions]


# ---------------------------------------------------------------------------- the oracle


@dataclass
class Facts:
    """What a row is: which firm, agreement, company, user and subscription it belongs to."""

    type_name: str
    pk: int
    firm_id: int | None = None
    agreement_id: int | None = None
    company_id: int | None = None
    user_id: int | None = None
    subscription_id: int | None = None
    to_firm_id: int | None = None


@dataclass
class Tables:
    """The rows the oracle reads, fetched once per step: which agreement and firm each company
    is in, and who holds which membership, staff record and client-user licence."""

    company_firms: dict[int, int]
    company_agreements: dict[int, int]
    subscription_agreements: dict[int, int | None]
    memberships: list[Facts]
    staff: list[tuple[int, int]]  # (firm, user)
    client_users: list[tuple[int, int]]


async def read_tables(api: Api) -> Tables:
    async with api.runtime.database.sessions() as session:
        companies = (await session.execute(select(Company.id, Company.firm_id, Company.agreement_id))).all()
        subscriptions = (await session.execute(select(Subscription.id, Subscription.agreement_id))).all()
        memberships = (await session.execute(
            select(Membership.id, Membership.firm_id, Membership.company_id, Membership.user_id))).all()
        staff = (await session.execute(select(FirmMember.firm_id, FirmMember.user_id))).all()
        client_users = (await session.execute(select(ClientUser.firm_id, ClientUser.user_id))).all()
    agreements = {c.id: c.agreement_id for c in companies}
    return Tables(
        {c.id: c.firm_id for c in companies}, agreements, {s.id: s.agreement_id for s in subscriptions},
        [Facts("Membership", m.id, m.firm_id, agreements[m.company_id], m.company_id, m.user_id)
         for m in memberships],
        [(r[0], r[1]) for r in staff], [(r[0], r[1]) for r in client_users])


async def facts_of(api: Api, tables: Tables, global_id_list: set[str]) -> list[Facts]:
    """The facts of every tenant object among the IDs, one query per type. The public catalog
    and unknown IDs are left out."""
    wanted: dict[str, set[int]] = {}
    for global_id in global_id_list:
        try:
            type_name, pk = global_ids.decode(global_id)
        except global_ids.InvalidId:
            continue
        wanted.setdefault(type_name, set()).add(pk)
    found = [Facts("User", pk, user_id=pk) for pk in wanted.pop("User", set())]
    async with api.runtime.database.sessions() as session:
        for type_name, pks in wanted.items():
            model = MODELS.get(type_name)
            if model is None:
                continue
            for row in (await session.scalars(select(model).where(model.id.in_(pks)))).all():
                found.append(_facts(type_name, row, tables))
    return found


def _facts(type_name: str, row: Any, tables: Tables) -> Facts:
    f = Facts(type_name, row.id, **{key: getattr(row, key, None)
                                    for key in ("firm_id", "agreement_id", "company_id", "user_id",
                                                "subscription_id")})
    if isinstance(row, Firm):
        f.firm_id = row.id
    elif isinstance(row, Agreement):
        f.agreement_id = row.id
    elif isinstance(row, Company):
        f.company_id = row.id
    elif isinstance(row, Subscription):
        f.subscription_id = row.id
    elif isinstance(row, AgreementTransfer):
        f.firm_id, f.to_firm_id = row.from_firm_id, row.to_firm_id
    if f.company_id is not None and f.agreement_id is None:
        f.agreement_id = tables.company_agreements.get(f.company_id)
    if f.subscription_id is not None and f.agreement_id is None:
        f.agreement_id = tables.subscription_agreements.get(f.subscription_id)
    return f


@dataclass
class Sight:
    """What an actor may see, by DESIGN.md section 3, from the grants this test tracks."""

    actor: Actor
    grants: dict[int, str]  # company pk -> role
    tables: Tables

    @property
    def staff(self) -> set[int]:
        return {self.actor.staff_firm} if self.actor.staff_firm is not None else set()

    def _readers(self) -> set[int]:
        return {c for c, role in self.grants.items() if role in SUBSCRIPTION_READERS}

    def _reader_agreements(self) -> set[int]:
        return {self.tables.company_agreements[c] for c in self._readers()}

    def users(self) -> set[int]:
        """Users with a membership the actor may see, a staff record of its firm, or (for a
        firm admin) a client-user licence of its firm; and itself."""
        users = {m.user_id for m in self.tables.memberships if self.may_see(m) and m.user_id is not None}
        users |= {user for firm, user in self.tables.staff if firm in self.staff}
        if self.actor.firm_admin:
            users |= {user for firm, user in self.tables.client_users if firm in self.staff}
        return users | ({self.actor.user_id} if self.actor.user_id else set())

    def may_see(self, f: Facts, users: set[int] | None = None) -> bool:
        if self.actor.vendor:
            return True
        staff = f.firm_id in self.staff
        match f.type_name:
            case "Firm":
                return staff or f.firm_id in {self.tables.company_firms[c] for c in self.grants}
            case "Agreement":
                return staff or f.agreement_id in {self.tables.company_agreements[c] for c in self.grants}
            case "Company":
                return staff or f.company_id in self.grants
            case "Membership":
                readable = {c for c, role in self.grants.items() if role != "REPORTER"}
                own = f.user_id == self.actor.user_id and f.company_id in self.grants
                return staff or f.company_id in readable or own
            case "User":
                return f.pk in (users if users is not None else self.users())
            case "LicenseSubscription" | "Invoice":
                return staff or f.agreement_id in self._reader_agreements()
            case "Order":
                return staff or (f.agreement_id is not None and f.agreement_id in self._reader_agreements())
            case "AuditEvent":
                return staff or f.company_id in self._readers() or (
                    f.agreement_id is not None and f.agreement_id in self._reader_agreements())
            case "LicenseSession":
                return staff or (f.user_id == self.actor.user_id and f.company_id in self.grants)
            case "FirmMember":
                return staff
            case "ClientUser":
                return staff and self.actor.firm_admin
            case "AgreementTransfer":
                return staff or f.to_firm_id in self.staff
        raise AssertionError(f"no visibility rule for {f.type_name}")


def object_ids(body: Any) -> Iterator[str]:
    """Every global ID under an `id` key, at any depth."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "id" and isinstance(value, str):
                yield value
            else:
                yield from object_ids(value)
    elif isinstance(body, list):
        for item in body:
            yield from object_ids(item)


async def assert_sees_only_its_own(world: World, sights: list[Sight], body: Any, step: str) -> None:
    """Every object in the response is one the actor may see under one of `sights` (a
    mutation's answer may show what the caller saw before it, or after)."""
    seen = set(object_ids(body))
    if not seen or all(s.actor.vendor for s in sights):
        return
    users = [s.users() for s in sights]
    for facts in await facts_of(world.api, sights[-1].tables, seen):
        assert any(s.may_see(facts, u) for s, u in zip(sights, users, strict=True)), (
            f"{step}: {sights[0].actor.name} received {facts}")


# ---------------------------------------------------------------------------- invariants


async def audit_count(api: Api) -> int:
    async with api.runtime.database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


SEATS_OVERDRAWN = text("""
    SELECT s.id, p.license_type, p.purchased, (
        CASE p.license_type
        WHEN 'NAMED' THEN (SELECT count(DISTINCT m.user_id) FROM memberships m JOIN companies c ON c.id = m.company_id
                           WHERE c.agreement_id = s.agreement_id AND m.license_type = 'NAMED'
                             AND (m.access_ends_at IS NULL OR m.access_ends_at > :now)
                             AND (m.status = 'ACTIVE' OR (m.status = 'INVITED' AND
                                  (m.invitation_expires_at IS NULL OR m.invitation_expires_at > :now))))
        WHEN 'CONCURRENT' THEN (SELECT count(*) FROM license_sessions l WHERE l.subscription_id = s.id
                                AND l.ended_at IS NULL AND l.expires_at > :now)
        END) AS in_use
    FROM subscriptions s JOIN seat_pools p ON p.subscription_id = s.id
    WHERE s.agreement_id IS NOT NULL AND p.license_type IN ('NAMED', 'CONCURRENT') AND s.firm_id = ANY(:firms)
""")


async def assert_seats_hold(world: World, step: str) -> None:
    firms = [global_ids.decode(f)[1] for f in world.firms]
    async with world.api.runtime.database.sessions() as session:
        rows = (await session.execute(SEATS_OVERDRAWN, {"now": world.api.runtime.now(), "firms": firms})).all()
    for subscription_id, license_type, purchased, in_use in rows:
        assert in_use <= purchased, f"{step}: subscription {subscription_id} uses {in_use} {license_type} " \
                                    f"seats of {purchased}"


# ---------------------------------------------------------------------------- steps

MEMBERSHIP = "membership { id status role user { id } company { id } }"


@dataclass
class Answer:
    body: dict[str, Any]
    mutation: str | None = None  # the payload's field when this was a mutation
    no_op: bool = False  # what it asked for was so already: a success that changes nothing

    @property
    def changed(self) -> bool:
        return self.succeeded and not self.no_op

    @property
    def succeeded(self) -> bool:
        if self.body.get("errors") or self.mutation is None:
            return False
        payload: dict[str, Any] | None = (self.body.get("data") or {}).get(self.mutation)
        return payload is not None and not payload["userErrors"]

    @property
    def payload(self) -> dict[str, Any]:
        value: dict[str, Any] = self.body["data"][self.mutation]
        return value


async def send(world: World, actor: Actor, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = await world.api.post(query, variables, actor.token)
    assert response.status_code in (200, 400, 403), f"{actor.name}: HTTP {response.status_code} {response.text}"
    body: dict[str, Any] = response.json()
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code in {"FORBIDDEN", "NOT_FOUND", "BAD_USER_INPUT", "SCOPE_REQUIRED", "INSUFFICIENT_SCOPE",
                        "EMAIL_REQUIRED", "UNAUTHENTICATED", "GRAPHQL_VALIDATION_FAILED"}, error
    return body


async def mutate(world: World, actor: Actor, name: str, input: dict[str, Any], selection: str) -> Answer:
    query = f"mutation($input: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $input) {{ {selection} " \
            f"userErrors {{ code field }} }} }}"
    return Answer(await send(world, actor, query, {"input": input}), name)


DEEP_FIRM = """query($id: ID!) { firm(id: $id) { id staff(first: 20) { edges { node { id user { id } } } }
  clientUsers(first: 20) { edges { node { id user { id } } } } invoices(first: 20) { edges { node { id } } }
  auditLog(first: 20) { edges { node { id } } }
  agreements(first: 20, includeArchived: true) { edges { node { id
    subscription { id orders(first: 20) { edges { node { id } } } }
    companies(first: 20, includeArchived: true) { edges { node { id
      members(first: 20) { edges { node { id user { id } } } } } } } } } }
} }"""
# Pages of 20 hold all a world has (the template plus at most 12 steps) and keep the queries under the
# cost limit (schema.cost) that pages of the default size would pass.
FRAGMENTS = """id
  ... on Firm { staff(first: 20) { edges { node { id user { id } } } }
                clientUsers(first: 20) { edges { node { id user { id } } } } }
  ... on Company { agreement { id subscription { id } firm { id } }
                   members(first: 20) { edges { node { id user { id } } } }
                   auditLog(first: 20) { edges { node { id } } } }
  ... on Agreement { firm { id } subscription { id } invoices(first: 20) { edges { node { id } } }
                     companies(first: 20) { edges { node { id } } } }
  ... on Membership { company { id } user { id memberships(first: 20) { edges { node { id company { id } } } } } }
  ... on User { memberships(first: 20) { edges { node { id company { id agreement { id } } } } } }
  ... on LicenseSubscription { orders(first: 20) { edges { node { id } } }
                               auditLog(first: 20) { edges { node { id } } } }
  ... on LicenseSession { user { id } company { id } }"""
NODE = f"query($id: ID!) {{ node(id: $id) {{ {FRAGMENTS} }} }}"
EVERYTHING = f"query($ids: [ID!]!) {{ nodes(ids: $ids) {{ {FRAGMENTS} }} }}"
VIEWER = """{ viewer { user { id memberships(first: 20) { edges { node { id company { id
  members(first: 20) { edges { node { id user { id } } } } } } } } }
  firms(first: 20) { edges { node { id agreements(first: 20) { edges { node { id
    companies(first: 20) { edges { node { id } } } } } } } } }
  memberships(first: 20) { edges { node { id company { id agreement { id subscription { id } } }
                                user { id } } } } } }"""


def pick(data: st.DataObject, values: list[str]) -> str:
    """One of `values`, drawn as a plain number: the lists grow as a run goes, and a number
    shrinks well."""
    return values[data.draw(st.integers(0, 2**16)) % len(values)]


def target(data: st.DataObject, world: World, actor: Actor, values: list[str]) -> str:
    """Mostly an object of the actor's own firm (so that changes succeed and reads return
    something); one time in four any object of any firm."""
    if data.draw(st.integers(0, 3)) == 0 or actor.vendor:
        return pick(data, values)
    firms = {actor.staff_firm} if actor.staff_firm is not None else {
        world.firm_of[global_ids.encode("Company", c)] for c in world.grants(actor)}
    own = [v for v in values if world.firm_of.get(v) in firms]
    return pick(data, own or values)


def email_for(data: st.DataObject, world: World) -> str:
    """Mostly someone new; sometimes a person who already works elsewhere, an actor."""
    known = [a.email for a in world.actors if a.email]
    if data.draw(st.booleans()):
        return pick(data, known)
    return unique("p") + "@people.example"


def learn_membership(world: World, answer: Answer) -> None:
    if not answer.succeeded:
        return
    m = answer.payload.get("membership")
    if m:
        world.memberships[m["id"]] = Access(global_ids.decode(m["user"]["id"])[1],
                                            global_ids.decode(m["company"]["id"])[1], m["role"],
                                            m["status"] != "DEACTIVATED")
        world.firm_of[m["id"]] = world.firm_of[m["company"]["id"]]
        if m["user"]["id"] not in world.users:
            world.users.append(m["user"]["id"])


Step = Callable[[World, Actor, st.DataObject], Awaitable[Answer]]


async def read_firm(world: World, actor: Actor, data: st.DataObject) -> Answer:
    return Answer(await send(world, actor, DEEP_FIRM, {"id": target(data, world, actor, world.firms)}))


async def read_node(world: World, actor: Actor, data: st.DataObject) -> Answer:
    return Answer(await send(world, actor, NODE, {"id": target(data, world, actor, world.known_ids())}))


async def read_nodes(world: World, actor: Actor, data: st.DataObject) -> Answer:
    known = world.known_ids()
    chosen = [pick(data, known) for _ in range(data.draw(st.integers(1, 8)))]
    return Answer(await send(world, actor, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": chosen}))


async def read_everything(world: World, actor: Actor, data: st.DataObject) -> Answer:
    """Every object of every firm at once, each with what hangs off it: whatever leaks shows."""
    return Answer(await send(world, actor, EVERYTHING, {"ids": world.known_ids()[:100]}))


async def read_viewer(world: World, actor: Actor, data: st.DataObject) -> Answer:
    return Answer(await send(world, actor, VIEWER, {}))


async def invite(world: World, actor: Actor, data: st.DataObject) -> Answer:
    input = {"companyId": target(data, world, actor, world.companies), "name": "Someone", "role": pick(data, ROLES[:3]),
             "licenseType": pick(data, ["NAMED", "CONCURRENT"])}
    if data.draw(st.integers(0, 4)) == 0:
        input["personalIdentityNumber"] = new_pin()
    else:
        input["email"] = email_for(data, world)
    answer = await mutate(world, actor, "inviteUser", input, MEMBERSHIP)
    learn_membership(world, answer)
    return answer


async def grant_accountant(world: World, actor: Actor, data: st.DataObject) -> Answer:
    answer = await mutate(world, actor, "grantAccountantAccess", {
        "companyId": target(data, world, actor, world.companies), "name": "Accountant",
        "email": email_for(data, world)}, MEMBERSHIP)
    learn_membership(world, answer)
    return answer


def membership_step(name: str, leaves_active: bool) -> Step:
    async def step(world: World, actor: Actor, data: st.DataObject) -> Answer:
        chosen = target(data, world, actor, list(world.memberships))
        answer = await mutate(world, actor, name, {"membershipId": chosen}, MEMBERSHIP)
        answer.no_op = world.memberships[chosen].active == leaves_active
        learn_membership(world, answer)
        return answer
    step.__name__ = name
    return step


async def change_role(world: World, actor: Actor, data: st.DataObject) -> Answer:
    chosen, role = target(data, world, actor, list(world.memberships)), pick(data, ROLES[:3])
    answer = await mutate(world, actor, "updateMembership", {"membershipId": chosen, "role": role}, MEMBERSHIP)
    answer.no_op = world.memberships[chosen].role == role
    learn_membership(world, answer)
    return answer


async def rename_company(world: World, actor: Actor, data: st.DataObject) -> Answer:
    return await mutate(world, actor, "updateCompany", {"companyId": target(data, world, actor, world.companies),
                                                        "name": unique("Renamed ")}, "company { id }")


async def create_company(world: World, actor: Actor, data: st.DataObject) -> Answer:
    answer = await mutate(world, actor, "createCompany", {
        "agreementId": target(data, world, actor, world.agreements),
        "company": {"name": unique("New "), "country": "SE"}}, "company { id agreement { id } }")
    if answer.succeeded:
        world.companies.append(answer.payload["company"]["id"])
        world.firm_of[answer.payload["company"]["id"]] = world.firm_of[answer.payload["company"]["agreement"]["id"]]
    return answer


async def change_seats(world: World, actor: Actor, data: st.DataObject) -> Answer:
    chosen, license_type = target(data, world, actor, world.subscriptions), pick(data, ["NAMED", "CONCURRENT"])
    seats = data.draw(st.integers(0, 6))
    pools = (await world.api.ok("query($id: ID!) { node(id: $id) { ... on LicenseSubscription { seats { "
                                "licenseType purchased nextPeriodPurchased } } } }", {"id": chosen},
                                token=await world.api.vendor()))["node"]["seats"]
    pool = next((p for p in pools if p["licenseType"] == license_type), {"purchased": 0, "nextPeriodPurchased": 0})
    answer = await mutate(world, actor, "changeSeats", {"subscriptionId": chosen, "licenseType": license_type,
                                                       "seats": seats},
                          "subscription { id seats { licenseType purchased inUse } }")
    answer.no_op = pool["purchased"] == pool["nextPeriodPurchased"] == seats  # nor one scheduled to undo
    return answer


async def start_session(world: World, actor: Actor, data: st.DataObject) -> Answer:
    answer = await mutate(world, actor, "startSession", {"companyId": target(data, world, actor, world.companies)},
                          "session { id user { id } company { id } }")
    if answer.succeeded:
        world.sessions.append(answer.payload["session"]["id"])
        world.firm_of[answer.payload["session"]["id"]] = world.firm_of[answer.payload["session"]["company"]["id"]]
    return answer


async def end_session(world: World, actor: Actor, data: st.DataObject) -> Answer:
    if not world.sessions:
        return await read_viewer(world, actor, data)
    return await mutate(world, actor, "endSession", {"sessionId": target(data, world, actor, world.sessions)},
                        "session { id }")


STEPS: list[Step] = [  # the ones that matter most come twice
    read_firm, read_node, read_nodes, read_viewer, read_everything, read_everything, invite, invite, grant_accountant,
    membership_step("deactivateMembership", False), membership_step("reactivateMembership", True),
    membership_step("revokeAccountantAccess", False), change_role, rename_company, create_company, change_seats,
    start_session, end_session,
]


# ---------------------------------------------------------------------------- the world


async def build_world(api: Api) -> World:
    vendor = Actor("vendor", await api.vendor(), vendor=True)
    world = World(api, [vendor], [], [], [], [], [])
    for index in range(3):
        firm = await api.firm(reseller=index == 1, certified=index == 0)
        firm_pk = global_ids.decode(firm.id)[1]
        world.firms.append(firm.id)
        admin_user = await _user_id(api, firm.admin_email)
        world.actors.append(Actor(f"admin{index}", firm.admin, admin_user, firm.admin_email, firm_pk, True))
        world.actors.append(Actor(f"admin{index}-readonly", await api.token(firm.admin_email, scopes=READ_SCOPES),
                                  admin_user, None, firm_pk, True))
        advisor = unique("advisor") + "@firm.example"
        await api.mutate("addFirmStaff", {"firmId": firm.id, "name": "Advisor", "email": advisor,
                                          "role": "FIRM_ADVISOR"}, "firmMember { id }", token=vendor.token)
        world.actors.append(Actor(f"advisor{index}", await api.token(advisor), await _user_id(api, advisor), advisor,
                                  firm_pk))
        async with api.runtime.database.sessions.begin() as session:
            client = await register_client(session, name=f"dashboard {index}", scopes=USER_SCOPES, firm_id=firm_pk)
        world.actors.append(Actor(f"client{index}", await api.token(scopes=USER_SCOPES, client_id=client.client_id),
                                  staff_firm=firm_pk, firm_admin=True))
        for _ in range(2):
            agreement, company = await api.agreement(firm)
            assert company
            # The first agreement's two seats are both taken by its members below: it is full.
            seats = 2 if not world.agreements else 4
            made = [agreement, company, await api.company(firm, agreement),
                    await api.subscription(firm, agreement, named=seats, concurrent=1)]
            world.agreements.append(made[0])
            world.companies += made[1:3]
            world.subscriptions.append(made[3])
            world.firm_of.update(dict.fromkeys([firm.id, *made], firm_pk))
        if index == 0:  # a client-user licence, which only the firm's admin may read (section 3)
            await api.subscription(firm, firm.id, named=0, client_user=1)
            await _client_user(world, firm.id, firm.admin, world.companies[3])
    # Company members: every role, one BankID-only user, one person in two firms.
    for role, index in (("ADMINISTRATOR", 0), ("APPROVER", 1), ("ADMINISTRATOR", 6), ("REPORTER", 6)):
        await _member(world, role, world.companies[index])
    bankid = new_pin()
    answer = await _invite(world, world.companies[8], "APPROVER", personalIdentityNumber=bankid)
    bankid_user = global_ids.decode(answer["user"]["id"])[1]
    world.actors.append(Actor("bankid", await _token_for(api, bankid_user), bankid_user))
    both = unique("both") + "@people.example"
    await _invite(world, world.companies[2], "REPORTER", email=both)
    await _invite(world, world.companies[9], "ADMINISTRATOR", email=both)
    world.actors.append(Actor("two-firms", await api.token(both), await _user_id(api, both), both))
    accountant = await api.mutate("grantAccountantAccess", {"companyId": world.companies[5], "name": "Books",
                                                            "email": unique("acc") + "@books.example"},
                                  MEMBERSHIP, token=await api.vendor())
    m = accountant["membership"]
    world.memberships[m["id"]] = Access(global_ids.decode(m["user"]["id"])[1], global_ids.decode(m["company"]["id"])[1],
                                        "ACCOUNTANT", True)
    world.firm_of[m["id"]] = world.firm_of[world.companies[5]]
    async with api.runtime.database.sessions() as session:
        from models import User
        email = await session.scalar(select(User.email).where(User.id == global_ids.decode(m["user"]["id"])[1]))
    assert email
    world.actors.append(Actor("accountant", await api.token(email), global_ids.decode(m["user"]["id"])[1], email))
    world.users = sorted({global_ids.encode("User", x.user_id) for x in world.actors if x.user_id})
    return world


async def _user_id(api: Api, email: str) -> int:
    from models import User
    async with api.runtime.database.sessions() as session:
        user_id = await session.scalar(select(User.id).where(User.email_normalized == email.lower()))
    assert user_id is not None
    return int(user_id)


async def _token_for(api: Api, user_id: int) -> str:
    return await api.runtime.tokens.issue(subject=global_ids.encode("User", user_id), client_id=api.app_client_id,
                                          scopes=USER_SCOPES)


async def _invite(world: World, company: str, role: str, **identity: str) -> dict[str, Any]:
    payload = await world.api.mutate("inviteUser", {"companyId": company, "name": "Member", "role": role,
                                                    "licenseType": "NAMED", **identity},
                                     MEMBERSHIP, token=await world.api.vendor())
    m: dict[str, Any] = payload["membership"]
    world.memberships[m["id"]] = Access(global_ids.decode(m["user"]["id"])[1],
                                        global_ids.decode(m["company"]["id"])[1], role, True)
    world.firm_of[m["id"]] = world.firm_of[company]
    return m


async def _client_user(world: World, firm: str, admin: str, company: str) -> None:
    email = unique("client-user") + "@client.example"
    await world.api.mutate("assignClientUser", {"firmId": firm, "companyIds": [company], "name": "Client Person",
                                                "email": email}, "clientUser { id }", token=admin)
    user_id = await _user_id(world.api, email)
    from models import Membership
    async with world.api.runtime.database.sessions() as session:
        membership = await session.scalar(select(Membership.id).where(Membership.user_id == user_id))
    assert membership is not None
    m = global_ids.encode("Membership", membership)
    world.memberships[m] = Access(user_id, global_ids.decode(company)[1], "REPORTER", True)
    world.firm_of[m] = world.firm_of[company]
    world.actors.append(Actor("client-user", await world.api.token(email), user_id, email))


async def _member(world: World, role: str, company: str) -> None:
    email = unique(role.lower()) + "@people.example"
    await _invite(world, company, role, email=email)
    world.actors.append(Actor(f"{role.lower()}@{world.companies.index(company)}", await world.api.token(email),
                              await _user_id(world.api, email), email))


@dataclass
class Template:
    url: str
    world: World
    vendor_client_id: str
    app_client_id: str

    def __repr__(self) -> str:
        return f"Template({self.url.rsplit('/', 1)[-1]})"


@asynccontextmanager
async def serving(url: str, vendor_client_id: str, app_client_id: str) -> AsyncIterator[Api]:
    """The app over HTTP (ASGI) on the database at `url`."""
    database = connect(url)
    try:
        runtime = Runtime.create(database, Settings())
        transport = httpx.ASGITransport(app=create_app(runtime=runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://bureau.test") as http:
            yield Api(http, runtime, vendor_client_id=vendor_client_id, app_client_id=app_client_id)
    finally:
        await database.dispose()


async def clone(template_url: str) -> str:
    template = make_url(template_url)
    name = f"{template.database}_{secrets.token_hex(3)}"
    engine = create_async_engine(template.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"')
    await engine.dispose()
    return template.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
async def template() -> AsyncIterator[Template]:
    url = await create_database("bureau_tenancy")
    await migrate(url)
    database = connect(url)
    async with database.sessions.begin() as session:
        vendor = await register_client(session, name="vendor back office", scopes=list(ALL_SCOPES))
        app_client = await register_client(session, name="partner app", scopes=list(ALL_SCOPES))
    await database.dispose()
    async with serving(url, vendor.client_id, app_client.client_id) as api:
        world = await build_world(api)
    yield Template(url, world, vendor.client_id, app_client.client_id)
    await drop_database(url)


@asynccontextmanager
async def fresh_world(template: Template) -> AsyncIterator[World]:
    """A copy of the template's world on a copy of its database."""
    url = await clone(template.url)
    try:
        async with serving(url, template.vendor_client_id, template.app_client_id) as api:
            original = template.world
            yield replace(copy.deepcopy(replace(original, api=None)), api=api)  # type: ignore[arg-type]
    finally:
        await drop_database(url)


# ---------------------------------------------------------------------------- the test


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_random_traffic_keeps_every_tenant_to_itself(template: Template, data: st.DataObject) -> None:
    async with fresh_world(template) as world:
        await run_steps(world, data)


async def run_steps(world: World, data: st.DataObject) -> None:
    for number in range(data.draw(st.integers(1, 12), label="steps")):
        actor = data.draw(st.sampled_from(world.actors), label="actor")
        step = data.draw(st.sampled_from(STEPS), label="step")
        await check_step(world, actor, data, step, f"step {number} {step.__name__} by {actor.name}")
    # Then a few actors read everything: a leak the random reads missed shows here. Across a
    # run every actor gets its turn (five of nineteen per example).
    chosen = data.draw(st.lists(st.integers(0, len(world.actors) - 1), min_size=5, max_size=5, unique=True),
                       label="final readers")
    for index in chosen:
        actor = world.actors[index]
        await check_step(world, actor, data, read_everything, f"final read by {actor.name}")


async def check_step(world: World, actor: Actor, data: st.DataObject, step: Step, label: str) -> None:
    grants = world.grants(actor)
    events = await audit_count(world.api)
    answer = await step(world, actor, data)
    tables = await read_tables(world.api)
    sights = [Sight(actor, grants, tables), Sight(actor, world.grants(actor), tables)]
    await assert_sees_only_its_own(world, sights, answer.body, label)
    await assert_seats_hold(world, label)
    grown = await audit_count(world.api) - events
    if os.environ.get("TRACE"):
        print(label, answer.succeeded, len(set(object_ids(answer.body))), str(answer.body)[:150])
    assert grown == (1 if answer.changed else 0), f"{label}: {grown} audit events ({answer.body})"
