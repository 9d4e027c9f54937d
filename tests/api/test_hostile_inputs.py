"""One table of hostile inputs, each sent through HTTP: the answer is a userError with the
contract's code or a top-level error with `extensions.code`, never a 500, and nothing is
stored (no audit event, which every successful change writes: R29). Grow it with every
new way in."""

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from models import Agreement, AuditEvent, Company, Subscription, ids
from models.oauth_grants import RefreshToken
from settings import Limits
from tests.api.client import Api, Firm, new_pin, unique
from tests.api.test_compiled_reads import is_authentication
from tests.conftest import StatementCounter

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stage:
    """Two firms: ours (the caller is its FIRM_ADMIN) and theirs, with a BankID-only user."""

    api: Api
    ours: Firm
    our_company: str
    our_agreement: str
    our_subscription: str
    theirs: Firm
    their_company: str
    their_agreement: str
    their_subscription: str
    their_bankid_pin: str
    their_bankid_membership: str
    our_bankid_administrator: str  # the membership of a BankID-only ADMINISTRATOR of our company
    advisor: str  # a token of our FIRM_ADVISOR
    our_reporter: str  # a REPORTER membership of our company
    their_accountant: str  # an ACCOUNTANT membership of their company


@pytest.fixture(scope="module")
async def stage(api: Api) -> Stage:
    ours, theirs = await api.firm(reseller=True), await api.firm(reseller=True)
    our_agreement, our_company = await api.agreement(ours)
    their_agreement, their_company = await api.agreement(theirs)
    assert our_company and their_company
    our_subscription = await api.subscription(ours, our_agreement, named=10)
    their_subscription = await api.subscription(theirs, their_agreement, named=10)
    pin = new_pin()
    their_bankid = await api.invite(theirs.admin, their_company, personalIdentityNumber=pin, role="ADMINISTRATOR")
    our_bankid = await api.invite(ours.admin, our_company, personalIdentityNumber=new_pin(), role="ADMINISTRATOR")
    advisor_email = unique("advisor") + "@x.example"
    await api.mutate("addFirmStaff", {"firmId": ours.id, "name": "Advisor", "email": advisor_email,
                                      "role": "FIRM_ADVISOR"}, "firmMember { id }", token=await api.vendor())
    reporter = await api.invite(ours.admin, our_company, email=unique("reporter") + "@x.example")
    accountant = await api.mutate("grantAccountantAccess", {"companyId": their_company, "name": "Their Accountant",
                                                            "email": unique("acc") + "@books.example"},
                                  "membership { id }", token=theirs.admin)
    return Stage(api, ours, our_company, our_agreement, our_subscription, theirs, their_company, their_agreement,
                 their_subscription, pin, their_bankid["membership"]["id"], our_bankid["membership"]["id"],
                 await api.token(advisor_email), reporter["membership"]["id"], accountant["membership"]["id"])


def accountant(s: Stage, **fields: Any) -> dict[str, Any]:
    return {"companyId": s.our_company, "name": "Acc Ountant", "email": unique("acc") + "@books.example", **fields}


def days_from_today(s: Stage, days: int) -> str:
    return (s.api.runtime.today() + timedelta(days=days)).isoformat()


def invite(s: Stage, **fields: Any) -> dict[str, Any]:
    return {"companyId": s.our_company, "name": "Someone", "role": "REPORTER", "licenseType": "NAMED", **fields}


@dataclass(frozen=True)
class Case:
    mutation: str
    input: Callable[[Stage], dict[str, Any]]
    code: str
    caller: str = "admin"  # or "advisor"


CASES: dict[str, Case] = {
    # another firm's objects are invisible: NOT_FOUND, as if they did not exist
    "their company": Case("inviteUser", lambda s: invite(s, companyId=s.their_company, email="a@x.example"),
                          "NOT_FOUND"),
    "their agreement": Case("updateAgreement", lambda s: {"agreementId": s.their_agreement, "name": "Mine"},
                            "NOT_FOUND"),
    "their subscription": Case("changeSeats", lambda s: {"subscriptionId": s.their_subscription,
                                                         "licenseType": "NAMED", "seats": 1}, "NOT_FOUND"),
    "their firm": Case("addFirmStaff", lambda s: {"firmId": s.theirs.id, "name": "Me", "email": "me@x.example",
                                                  "role": "FIRM_ADMIN"}, "NOT_FOUND"),
    "a move into their agreement": Case("moveCompany", lambda s: {"companyId": s.our_company,
                                                                  "toAgreementId": s.their_agreement}, "NOT_FOUND"),
    "an ID of another type": Case("updateCompany", lambda s: {"companyId": s.our_agreement, "name": "X"},
                                  "NOT_FOUND"),
    "an ID that is no ID": Case("updateCompany", lambda s: {"companyId": "not-an-id", "name": "X"}, "NOT_FOUND"),
    # identities stay their owner's
    "their user's number with our email": Case(
        "inviteUser", lambda s: invite(s, personalIdentityNumber=s.their_bankid_pin, email=unique("a") + "@x.example"),
        "IDENTITY_CONFLICT"),
    "their admin's email with a number of ours": Case(
        "inviteUser", lambda s: invite(s, email=s.theirs.admin_email, personalIdentityNumber=new_pin()),
        "IDENTITY_CONFLICT"),
    "a number that fails its check digit": Case("inviteUser", lambda s: invite(s, personalIdentityNumber="811228-9875"),
                                                "INVALID_PERSONAL_IDENTITY_NUMBER"),
    "no identity at all": Case("inviteUser", lambda s: invite(s), "IDENTITY_REQUIRED"),
    "an email of 300 characters": Case("inviteUser", lambda s: invite(s, email="a" * 290 + "@x.example"),
                                       "INVALID_INPUT"),
    # BankID-only invitations (R51): renewed only where they may be seen and acted on
    "their BankID invitation renewed": Case("resendWelcomeEmail", lambda s: {"membershipId": s.their_bankid_membership},
                                            "NOT_FOUND"),
    "an advisor renewing a BankID administrator's invitation": Case(
        "resendWelcomeEmail", lambda s: {"membershipId": s.our_bankid_administrator}, "FORBIDDEN", caller="advisor"),
    "an email change to no address": Case("requestEmailChange", lambda s: {"email": "no address"}, "INVALID_INPUT"),
    # nobody grants more than it holds
    "an advisor making an administrator": Case("inviteUser", lambda s: invite(s, email=unique("b") + "@x.example",
                                                                              role="ADMINISTRATOR"),
                                               "FORBIDDEN", caller="advisor"),
    "an advisor changing seats": Case("changeSeats", lambda s: {"subscriptionId": s.our_subscription,
                                                                "licenseType": "NAMED", "seats": 11},
                                      "FORBIDDEN", caller="advisor"),
    # accountant access ends after today, and only accountant access is revoked (R52)
    "accountant access until yesterday": Case("grantAccountantAccess",
                                              lambda s: accountant(s, until=days_from_today(s, -1)), "INVALID_INPUT"),
    "accountant access until today": Case("grantAccountantAccess", lambda s: accountant(s, until=days_from_today(s, 0)),
                                          "INVALID_INPUT"),
    "accountant access until a date that is no date": Case(
        "grantAccountantAccess", lambda s: accountant(s, until="2026-02-30"), "BAD_USER_INPUT"),
    "revoking a membership that is no accountant's": Case(
        "revokeAccountantAccess", lambda s: {"membershipId": s.our_reporter}, "INVALID_INPUT"),
    "revoking their accountant": Case("revokeAccountantAccess", lambda s: {"membershipId": s.their_accountant},
                                      "NOT_FOUND"),
    # webhooks (R67): https to public addresses only, the firm's admins only
    "a webhook to a private address": Case("createWebhookEndpoint", lambda s: webhook(s, url="https://10.0.0.1/h"),
                                           "INVALID_INPUT"),
    "a webhook to the cloud's metadata address": Case(
        "createWebhookEndpoint", lambda s: webhook(s, url="https://169.254.169.254/latest/meta-data"), "INVALID_INPUT"),
    "a webhook over plain http": Case("createWebhookEndpoint", lambda s: webhook(s, url="http://example.com/h"),
                                      "INVALID_INPUT"),
    "a webhook to loopback outside development": Case(
        "createWebhookEndpoint", lambda s: webhook(s, url="http://127.0.0.1:8080/h"), "INVALID_INPUT"),
    "a webhook with a password in its URL": Case(
        "createWebhookEndpoint", lambda s: webhook(s, url="https://me:secret@127.0.0.1/h"), "INVALID_INPUT"),
    "a webhook for no event": Case("createWebhookEndpoint", lambda s: webhook(s, eventTypes=[]), "INVALID_INPUT"),
    "a webhook for an event that does not exist": Case(
        "createWebhookEndpoint", lambda s: webhook(s, eventTypes=["EVERYTHING"]), "BAD_USER_INPUT"),
    "a webhook for their firm": Case("createWebhookEndpoint", lambda s: webhook(s, firmId=s.theirs.id), "NOT_FOUND"),
    "an advisor adding a webhook": Case("createWebhookEndpoint", lambda s: webhook(s), "FORBIDDEN", caller="advisor"),
    "a webhook secret rolled for an agreement": Case(
        "rollWebhookSecret", lambda s: {"webhookEndpointId": s.our_agreement}, "NOT_FOUND"),
    "a redelivery of no delivery": Case("redeliverWebhook", lambda s: {"deliveryId": "not-an-id"}, "NOT_FOUND"),
}


def webhook(s: Stage, **fields: Any) -> dict[str, Any]:
    return {"firmId": s.ours.id, "url": "https://10.0.0.1/hooks", "eventTypes": ["ARCHIVED"], **fields}


def _document(mutation: str) -> str:
    return (f"mutation($input: {mutation[0].upper()}{mutation[1:]}Input!) {{ {mutation}(input: $input) "
            "{ userErrors { code field message } } }")


async def _audit_events(api: Api) -> int:
    async with api.runtime.database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


@pytest.mark.parametrize("name", list(CASES))
async def test_a_hostile_input_is_refused_cleanly_and_stores_nothing(stage: Stage, name: str) -> None:
    case = CASES[name]
    api = stage.api
    token = stage.ours.admin if case.caller == "admin" else stage.advisor
    before = await _audit_events(api)
    response = await api.post(_document(case.mutation), {"input": case.input(stage)}, token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    codes = [e["extensions"]["code"] for e in body.get("errors") or []]
    if not codes:
        codes = [e["code"] for e in body["data"][case.mutation]["userErrors"]]
    assert case.code in codes, body
    assert "INTERNAL_SERVER_ERROR" not in codes
    assert await _audit_events(api) == before



# ---------------------------------------------------------------------------------------------
# Hostile requests at the HTTP level (R58..R60): each endpoint family answers in its own shape
# with a 4xx status and a code, whatever the body, the address or the document; nothing stored.

GRAPHQL, PROBLEM, OAUTH = "graphql", "problem", "oauth"
OVERFLOW_COMPANY = ids.encode("Company", 2**63)  # one past the largest 64-bit key
OVERFLOW_FIRM = ids.encode("Firm", 99999999999999999999999)
CREATE_AGREEMENT = ("mutation($input: CreateAgreementInput!) { createAgreement(input: $input) "
                    "{ agreement { id } userErrors { code field } } }")
VIEWER = "{ viewer { clientId } }"
# extensions.persistedQuery values Apollo's protocol does not know (R74)
HOSTILE_PERSISTED: dict[str, Any] = {
    "a string": "abc", "a list": [1], "a number": 1, "true": True, "empty": {},
    "version 2": {"version": 2, "sha256Hash": "a" * 64}, "version as text": {"version": "1", "sha256Hash": "a" * 64},
    "version true": {"version": True, "sha256Hash": "a" * 64}, "without a hash": {"version": 1},
    "a hash of null": {"version": 1, "sha256Hash": None}, "a hash that is a number": {"version": 1, "sha256Hash": 7},
    "a hash that is a list": {"version": 1, "sha256Hash": ["a" * 64]},
    "an uppercase hash": {"version": 1, "sha256Hash": "A" * 64},
    "a short hash": {"version": 1, "sha256Hash": "a" * 63}, "a long hash": {"version": 1, "sha256Hash": "a" * 65},
    "a hash that is no hex": {"version": 1, "sha256Hash": "g" * 64},
    "a hash with a newline": {"version": 1, "sha256Hash": "a" * 64 + "\n"},
    "a huge hash": {"version": 1, "sha256Hash": "a" * 500_000},
    "a hash of a path": {"version": 1, "sha256Hash": "../../" + "a" * 58},
    "a hash of a Redis pattern": {"version": 1, "sha256Hash": "*"},
}


@dataclass(frozen=True)
class Raw:
    """One request as sent: `body` is bytes as they are, or a JSON value; `answer` is
    (status, family, code); a code of None means the request is fine and `check` judges it."""

    method: str
    path: str | Callable[[Stage], str]
    body: Callable[[Stage], Any] | None = None
    answer: tuple[int, str, str | None] = (400, GRAPHQL, "BAD_REQUEST")
    content_type: str | None = None
    token: bool = True
    check: Callable[[Stage, dict[str, Any]], None] | None = None


def gql(query: str, variables: dict[str, Any] | None = None, **more: Any) -> Callable[[Stage], Any]:
    return lambda s: {"query": query, "variables": variables or {}, **more}


def new_agreement(s: Stage, name: str) -> dict[str, Any]:
    return {"query": CREATE_AGREEMENT, "variables": {"input": {"firmId": s.ours.id, "name": name,
                                                               "billingMode": "CUSTOMER"}}}


def constant(value: Any) -> Callable[[Stage], Any]:
    return lambda s: value


def named_agreement(name: str) -> Callable[[Stage], Any]:
    return lambda s: new_agreement(s, name)


def userError(code: str, mutation: str = "createAgreement") -> Callable[[Stage, dict[str, Any]], None]:
    def check(s: Stage, body: dict[str, Any]) -> None:
        assert [e["code"] for e in body["data"][mutation]["userErrors"]] == [code], body
    return check


def null_node(s: Stage, body: dict[str, Any]) -> None:
    assert "errors" not in body and all(v is None or v == [None] for v in body["data"].values()), body


def deep(n: int) -> bytes:
    return b'{"query": "{ viewer { clientId } }", "variables": {"a": ' + b"[" * n + b"]" * n + b"}}"


def fields(n: int, field: str = "viewer { clientId }") -> str:
    return "{ " + " ".join([field] * n) + " }"


def nested(depth: int) -> str:
    # firm -> agreements -> edges -> node -> firm -> ... : 4 levels a turn
    inner = "id"
    for _ in range(depth // 4):
        inner = f"agreements(first: 1) {{ edges {{ node {{ firm {{ {inner} }} }} }} }}"
    return "query($id: ID!) { firm(id: $id) { " + inner + " } }"


async def chunks(chunk: bytes, count: int) -> AsyncIterator[bytes]:
    """A body of unknown length (chunked): the server counts what arrives."""
    for _ in range(count):
        yield chunk


def too_large(size: int) -> Callable[[Stage], bytes]:
    return lambda s: b'{"query": "{ viewer { clientId } }", "pad": "' + b"x" * size + b'"}'


CONTROLS = {"NUL": "\x00", "ESC": "\x1b", "DEL": "\x7f", "NEL (C1)": "\x85", "a lone surrogate": "\ud800"}
LIMITS = Limits()
NOT_OBJECTS: dict[str, Any] = {"string": "hello", "null": None, "number": 42, "boolean": True, "list": []}

REQUESTS: dict[str, Raw] = {
    # bodies that are no GraphQL request: a GraphQL error with BAD_REQUEST, never text/plain or a 500
    **{f"a JSON {name} as the body": Raw("POST", "/graphql", constant(value))
       for name, value in NOT_OBJECTS.items()},
    "a batch of operations (batching is off)": Raw("POST", "/graphql", lambda s: [{"query": VIEWER}] * 2),
    "invalid UTF-8": Raw("POST", "/graphql", lambda s: b'{"query": "{ viewer { clientId } }\xff\xfe"}'),
    "UTF-16": Raw("POST", "/graphql", lambda s: json.dumps({"query": VIEWER}).encode("utf-16")),
    "JSON nested 100,000 deep": Raw("POST", "/graphql", lambda s: b"[" * 100_000 + b"]" * 100_000),
    "variables nested 100,000 deep": Raw("POST", "/graphql", lambda s: deep(100_000)),
    "not JSON": Raw("POST", "/graphql", lambda s: b'{"query": '),
    "an empty body": Raw("POST", "/graphql", lambda s: b""),
    "NaN in the variables": Raw("POST", "/graphql", lambda s: b'{"query": "{ viewer { clientId } }", '
                                                             b'"variables": {"x": NaN}}'),
    "an object without a query": Raw("POST", "/graphql", lambda s: {}),
    "a query that is a number": Raw("POST", "/graphql", lambda s: {"query": 42}),
    "variables that are a list": Raw("POST", "/graphql", lambda s: {"query": VIEWER, "variables": [1]}),
    "an operationName that is a number": Raw("POST", "/graphql", gql(VIEWER, operationName=42)),
    "an operationName that names no operation": Raw("POST", "/graphql", gql(VIEWER, operationName="Nope")),
    "a text/plain body": Raw("POST", "/graphql", lambda s: json.dumps({"query": VIEWER}).encode(),
                             content_type="text/plain"),
    "a mutation over GET": Raw("GET", "/graphql?query=" + quote("mutation { requestEmailChange(input: "
                                                                 '{email: "a@b.example"}) { userErrors { code } } }'),
                               answer=(400, GRAPHQL, "BAD_REQUEST")),
    "a subscription over HTTP": Raw("POST", "/graphql", lambda s: {
        "query": "subscription($id: ID!) { auditEvents(firmId: $id) { action } }", "variables": {"id": s.ours.id}},
        answer=(200, GRAPHQL, "BAD_REQUEST")),
    "no token and a broken body": Raw("POST", "/graphql", lambda s: b"\xff", token=False,
                                      answer=(401, GRAPHQL, "UNAUTHENTICATED")),
    # control characters and overlong strings anywhere in a GraphQL request: INVALID_INPUT
    **{f"{name} in a mutation's variable": Raw("POST", "/graphql", named_agreement(f"A{char}B"),
                                               answer=(200, GRAPHQL, "INVALID_INPUT"))
       for name, char in CONTROLS.items()},
    "NUL escaped in a string literal": Raw("POST", "/graphql", lambda s: {"query": (
        'mutation { createAgreement(input: {firmId: "' + s.ours.id + '", name: "A\\u0000B", '
        "billingMode: CUSTOMER}) { userErrors { code } } }")}, answer=(200, GRAPHQL, "INVALID_INPUT")),
    "a raw NUL in the document": Raw("POST", "/graphql", gql("{ viewer \x00 { clientId } }"),
                                     answer=(200, GRAPHQL, "INVALID_INPUT")),
    "NUL in a search": Raw("POST", "/graphql", lambda s: {
        "query": "query($id: ID!, $q: String) { firm(id: $id) { companies(search: $q) { edges { node { id } } } } }",
        "variables": {"id": s.ours.id, "q": "a\x00"}}, answer=(200, GRAPHQL, "INVALID_INPUT")),
    "NUL in a variable's name": Raw("POST", "/graphql", gql(VIEWER, {"a\x00": 1}),
                                    answer=(200, GRAPHQL, "INVALID_INPUT")),
    # no operation's name can hold one, so it names none
    "NUL in the operationName": Raw("POST", "/graphql", gql("query Q { viewer { clientId } }", operationName="Q\x00")),
    "a string over the length limit": Raw("POST", "/graphql",
                                          lambda s: new_agreement(s, "A" * (LIMITS.max_string_length + 1)),
                                          answer=(200, GRAPHQL, "INVALID_INPUT")),
    "a list over the item limit": Raw("POST", "/graphql", lambda s: {
        "query": "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        "variables": {"ids": [s.our_company] * (LIMITS.max_list_items + 1)}}, answer=(200, GRAPHQL, "INVALID_INPUT")),
    "NUL in a GET query": Raw("GET", "/graphql?query=" + quote("{ viewer { clientId } }\x00"),
                              answer=(400, GRAPHQL, "INVALID_INPUT")),
    # IDs that name nothing: null, or NOT_FOUND in a mutation
    "a node ID past int64": Raw("POST", "/graphql", gql("query($id: ID!) { node(id: $id) { id } }",
                                                        {"id": OVERFLOW_COMPANY}), answer=(200, GRAPHQL, None),
                                check=null_node),
    "nodes with an ID past int64": Raw("POST", "/graphql", gql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
                                                               {"ids": [OVERFLOW_COMPANY]}),
                                       answer=(200, GRAPHQL, None), check=null_node),
    "a firm ID past int64": Raw("POST", "/graphql", gql("query($id: ID!) { firm(id: $id) { id } }",
                                                        {"id": OVERFLOW_FIRM}), answer=(200, GRAPHQL, None),
                                check=null_node),
    "an ID with a leading zero": Raw("POST", "/graphql", lambda s: {
        "query": "query($id: ID!) { company(id: $id) { id } }",
        "variables": {"id": ids.encode("Company", 0) + "0"}}, answer=(200, GRAPHQL, None), check=null_node),
    "a mutation on an ID past int64": Raw("POST", "/graphql", lambda s: {
        "query": "mutation($input: UpdateCompanyInput!) { updateCompany(input: $input) { userErrors { code } } }",
        "variables": {"input": {"companyId": OVERFLOW_COMPANY, "name": "X"}}}, answer=(200, GRAPHQL, None),
        check=userError("NOT_FOUND", "updateCompany")),
    # request limits (R59), each with its own code
    "nodes over the ID limit": Raw("POST", "/graphql", lambda s: {
        "query": "{ nodes(ids: " + json.dumps([s.our_company] * (LIMITS.max_node_ids + 1)) + ") { id } }"},
        answer=(200, GRAPHQL, "TOO_MANY_IDS")),
    "a document too deep": Raw("POST", "/graphql", lambda s: {"query": nested(LIMITS.max_depth + 4),
                                                              "variables": {"id": s.ours.id}},
                               answer=(200, GRAPHQL, "QUERY_TOO_DEEP")),
    "too many aliases": Raw("POST", "/graphql", gql("{ " + " ".join(f"a{i}: viewer {{ clientId }}" for i in range(
        LIMITS.max_aliases + 1)) + " }"), answer=(200, GRAPHQL, "TOO_MANY_ALIASES")),
    "too many directives": Raw("POST", "/graphql", gql(fields(LIMITS.max_directives + 1,
                                                              "viewer @include(if: true) { clientId }")),
                               answer=(200, GRAPHQL, "TOO_MANY_DIRECTIVES")),
    "one directive twice at one location": Raw("POST", "/graphql", gql(
        "{ viewer @include(if: true) @include(if: true) { clientId } }"),
        answer=(200, GRAPHQL, "GRAPHQL_VALIDATION_FAILED")),
    "too many duplicated fields": Raw("POST", "/graphql", gql(fields(LIMITS.max_duplicate_fields + 2)),
                                      answer=(200, GRAPHQL, "TOO_MANY_DUPLICATE_FIELDS")),
    "too many operations": Raw("POST", "/graphql", gql(" ".join(f"query Q{i} {{ viewer {{ clientId }} }}" for i in
                                                                range(LIMITS.max_operations + 1)), operationName="Q0"),
                               answer=(200, GRAPHQL, "TOO_MANY_OPERATIONS")),
    "too many tokens": Raw("POST", "/graphql", gql("{ viewer { " + "a " * LIMITS.max_tokens + "} }"),
                           answer=(200, GRAPHQL, "TOO_MANY_TOKENS")),
    "a query over the byte limit": Raw("POST", "/graphql", gql(VIEWER + " #" + "x" * LIMITS.max_query_bytes),
                                       answer=(200, GRAPHQL, "QUERY_TOO_LARGE")),
    "a body over the byte limit": Raw("POST", "/graphql", too_large(LIMITS.max_body_bytes),
                                      answer=(413, GRAPHQL, "REQUEST_TOO_LARGE")),
    "a body over the byte limit, without a length": Raw(
        "POST", "/graphql", lambda s: chunks(b"x" * 65536, LIMITS.max_body_bytes // 65536 + 1),
        answer=(413, GRAPHQL, "REQUEST_TOO_LARGE")),
    "a Content-Length that is no number": Raw("POST", "/graphql", lambda s: b"{}", content_type="bad-length"),
    "two seat entries of one licence type": Raw("POST", "/graphql", lambda s: {
        "query": "mutation($input: CreateSubscriptionInput!) { createSubscription(input: $input) "
                 "{ userErrors { code } } }",
        "variables": {"input": {"ownerId": s.our_agreement, "editionCode": "STANDARD", "billingInterval": "MONTHLY",
                                "seats": [{"licenseType": "NAMED", "count": 1}] * 3}}},
        answer=(200, GRAPHQL, None), check=userError("INVALID_INPUT", "createSubscription")),
    # automatic persisted queries (R74): a malformed extension is 400 BAD_REQUEST, never a 500, nothing stored
    **{f"persistedQuery {name}": Raw("POST", "/graphql", lambda s, value=value: {  # type: ignore[misc]
        "query": VIEWER, "extensions": {"persistedQuery": value}})
       for name, value in HOSTILE_PERSISTED.items()},
    **{f"persistedQuery {name}, without a query, over GET": Raw(
        "GET", "/graphql?extensions=" + quote(json.dumps({"persistedQuery": value})))
       for name, value in HOSTILE_PERSISTED.items() if name != "a huge hash"},  # a URL has a length of its own
    "extensions that are no JSON over GET": Raw("GET", "/graphql?extensions=" + quote('{"persistedQuery":')),
    "extensions that are a list": Raw("POST", "/graphql", lambda s: {"extensions": [{"persistedQuery": {}}]}),
    "a persisted query hash with NUL": Raw("POST", "/graphql", lambda s: {"extensions": {"persistedQuery": {
        "version": 1, "sha256Hash": "a" * 63 + "\x00"}}}),
    "a persisted query hash of another query": Raw("POST", "/graphql", lambda s: {
        "query": VIEWER, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}},
        answer=(400, GRAPHQL, "PERSISTED_QUERY_HASH_MISMATCH")),
    "an unknown persisted query hash": Raw("POST", "/graphql", lambda s: {
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "f" * 64}}},
        answer=(200, GRAPHQL, "PERSISTED_QUERY_NOT_FOUND")),
    "a persisted query hash and a query that is no string": Raw("POST", "/graphql", lambda s: {
        "query": 7, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "f" * 64}}}),
    "a persisted query with a document over the byte limit": Raw("POST", "/graphql", lambda s: {
        "query": (big := VIEWER + " #" + "x" * LIMITS.max_query_bytes),
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(big.encode()).hexdigest()}}},
        answer=(200, GRAPHQL, "QUERY_TOO_LARGE")),
    # the CSV export: RFC 9457 problem details
    "an export without a firm": Raw("GET", "/exports/reinvoicing.csv?month=2026-01",
                                    answer=(400, PROBLEM, "INVALID_INPUT")),
    "an export without a month": Raw("GET", "/exports/reinvoicing.csv?firm=x", answer=(400, PROBLEM, "INVALID_INPUT")),
    "an export of a firm past int64": Raw("GET", f"/exports/reinvoicing.csv?firm={OVERFLOW_FIRM}&month=2026-01",
                                          answer=(404, PROBLEM, "NOT_FOUND")),
    "an export with NUL in the firm": Raw("GET", "/exports/reinvoicing.csv?firm=abc%00def&month=2026-01",
                                          answer=(400, PROBLEM, "INVALID_INPUT")),
    "an export of month 13": Raw("GET", lambda s: f"/exports/reinvoicing.csv?firm={s.ours.id}&month=2026-13",
                                 answer=(400, PROBLEM, "INVALID_INPUT")),
    "an export of a month that is no month": Raw(
        "GET", lambda s: f"/exports/reinvoicing.csv?firm={s.ours.id}&month=2026-1-1x", answer=(400, PROBLEM,
                                                                                            "INVALID_INPUT")),
    "an export of their firm": Raw("GET", lambda s: f"/exports/reinvoicing.csv?firm={s.theirs.id}&month=2026-01",
                                   answer=(404, PROBLEM, "NOT_FOUND")),
    "an export without a token": Raw("GET", "/exports/reinvoicing.csv?firm=x&month=2026-01", token=False,
                                     answer=(401, PROBLEM, "UNAUTHENTICATED")),
    "a body too large for the export": Raw("POST", "/exports/reinvoicing.csv", too_large(LIMITS.max_body_bytes),
                                           answer=(413, PROBLEM, "REQUEST_TOO_LARGE")),
    "NUL in an invitation link": Raw("GET", "/invitations/abc%00def", answer=(400, PROBLEM, "INVALID_INPUT")),
    "NUL in the JWKS address": Raw("GET", "/.well-known/jwks.json?x=%00", answer=(400, PROBLEM, "INVALID_INPUT")),
    # OAuth: its own error JSON
    "NUL in client_id at the token endpoint": Raw(
        "POST", "/oauth/token", lambda s: b"grant_type=client_credentials&client_id=abc%00def&client_secret=x",
        content_type="application/x-www-form-urlencoded", token=False, answer=(400, OAUTH, "invalid_request")),
    "NUL in client_id at the authorization endpoint": Raw(
        "GET", "/oauth/authorize?response_type=code&client_id=abc%00def", token=False,
        answer=(400, OAUTH, "invalid_request")),
    "NUL in a token to revoke": Raw("POST", "/oauth/revoke", lambda s: b"token=a%00b&client_id=x",
                                    content_type="application/x-www-form-urlencoded", token=False,
                                    answer=(400, OAUTH, "invalid_request")),
    "a form that is not UTF-8": Raw("POST", "/oauth/token", lambda s: b"grant_type=%FF%FE&client_id=x",
                                    content_type="application/x-www-form-urlencoded", token=False,
                                    answer=(400, OAUTH, "invalid_request")),
    "a body too large for the token endpoint": Raw("POST", "/oauth/token", too_large(LIMITS.max_body_bytes),
                                                   content_type="application/x-www-form-urlencoded", token=False,
                                                   answer=(413, OAUTH, "invalid_request")),
}


async def _stored(api: Api) -> tuple[int, ...]:
    async with api.runtime.database.sessions() as session:
        return tuple([int(await session.scalar(select(func.count()).select_from(model)) or 0)
                      for model in (AuditEvent, Agreement, Company, Subscription, RefreshToken)])


@pytest.mark.parametrize("name", list(REQUESTS))
async def test_a_hostile_request_gets_its_familys_error_and_stores_nothing(stage: Stage, name: str) -> None:
    case = REQUESTS[name]
    api = stage.api
    path = case.path if isinstance(case.path, str) else case.path(stage)
    headers = {"Authorization": f"Bearer {stage.ours.admin}"} if case.token else {}
    content: Any = None
    if case.body is not None:
        body = case.body(stage)
        content = body if isinstance(body, bytes) or hasattr(body, "__anext__") else json.dumps(body).encode()
        headers["Content-Type"] = case.content_type or "application/json"
    if case.content_type == "bad-length":
        headers.update({"Content-Type": "application/json", "Content-Length": "12abc"})
    before = await _stored(api)
    response = await api.http.request(case.method, path, content=content, headers=headers)
    status, family, code = case.answer
    assert response.status_code == status, response.text[:500]
    media_type = response.headers["content-type"].split(";")[0]
    body = response.json()
    if family == GRAPHQL:
        assert media_type == "application/json", response.headers
        errors = body.get("errors") or []
        assert all("code" in (e.get("extensions") or {}) for e in errors), body
        codes = [e["extensions"]["code"] for e in errors]
        if code is None:
            assert case.check is not None
            case.check(stage, body)
        else:
            assert code in codes, body
        assert "INTERNAL_SERVER_ERROR" not in codes
    elif family == PROBLEM:
        assert media_type == "application/problem+json", response.headers
        assert body["status"] == status and body["code"] == code and body["title"] and body["detail"], body
    else:
        assert media_type == "application/json" and body["error"] == code and body["error_description"], body
    assert await _stored(api) == before


def test_every_endpoint_family_has_cases() -> None:
    paths = {case.path.split("?")[0] for case in REQUESTS.values() if isinstance(case.path, str)}
    assert {"/graphql", "/exports/reinvoicing.csv", "/oauth/token", "/oauth/authorize", "/oauth/revoke"} <= paths


# Bad arguments to the `bureau` command: argparse's one-line error and exit code 2, no traceback.
BAD_ARGUMENTS = {
    "a date that does not exist": ["rollover", "--date", "2027-02-30"],
    "a date that is no date": ["rollover", "--date", "tomorrow"],
    "a TTL of 0": ["tokens", "issue", "--client-id", "x", "--scopes", "firms:read", "--ttl", "0"],
    "a negative TTL": ["tokens", "issue", "--client-id", "x", "--scopes", "firms:read", "--ttl", "-5"],
    "a TTL that is no whole number": ["tokens", "issue", "--client-id", "x", "--scopes", "firms:read", "--ttl", "--5"],
    "a negative age of keys": ["keys", "prune", "--older-than", "-1"],
    "a port out of range": ["serve", "--port", "70000"],
    "no workers": ["serve", "--workers", "0"],
    "a demo port out of range": ["demo", "--port", "0"],
}


@pytest.mark.parametrize("name", list(BAD_ARGUMENTS))
def test_a_bad_argument_is_one_line_and_exit_code_2(name: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "cli", *BAD_ARGUMENTS[name]], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False,
                          env={**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'none.db'}"})
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("bureau ") and ": error: argument" in last, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "none.db").exists()


async def test_nodes_loads_each_type_in_one_query(stage: Stage, statements: StatementCounter) -> None:
    """R59: `nodes` was one query per ID (N+1); now one per type, however many IDs of it."""
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"

    async def count(global_ids: list[str]) -> int:
        """The data's statements: the principal's read (R77) is left out, should a commit elsewhere in the
        process (another test's background work) have made the kept one stale meanwhile."""
        statements.reset()
        data = await stage.api.ok(query, {"ids": global_ids}, token=stage.ours.admin)
        assert len(data["nodes"]) == len(global_ids)
        return sum(not is_authentication(statement) for statement in statements.statements)

    # On the resolvers: compiled, `nodes` is one statement whatever it holds (R79).
    settings = stage.api.runtime.settings
    stage.api.runtime.settings = replace(settings, compiled_reads=False)
    try:
        await count([stage.our_company])  # the principal read and kept (R77): both counts below are the data's
        one = await count([stage.our_company])
        companies = [stage.our_company, stage.their_company, stage.our_bankid_administrator, OVERFLOW_COMPANY]
        assert await count(companies * 10) == one + 1  # the membership is a second type
    finally:
        stage.api.runtime.settings = settings
