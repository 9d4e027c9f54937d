"""One table of hostile inputs, each sent through HTTP: the answer is a userError with the
contract's code or a top-level error with `extensions.code`, never a 500, and nothing is
stored (no audit event, which every successful change writes: R29). Grow it with every
new way in."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from models import AuditEvent
from tests.api.client import Api, Firm, new_pin, unique


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
}


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

