"""A small GraphQL client for the API tests, and builders for the data they need."""

import itertools
from dataclasses import dataclass
from typing import Any

import httpx

from auth.clients import ALL_SCOPES
from models import ids
from resolvers.runtime import Runtime

USER_SCOPES = [s for s in ALL_SCOPES if s != "platform:admin"]
_serial = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_serial)}"


def new_pin() -> str:
    """A valid Swedish personnummer (YYYYMMDD-NNNN) no other test uses: tests share one database."""
    import random

    from licensing.identity import _luhn_check_digit

    while True:
        yymmdd = f"{random.randint(40, 99):02d}{random.randint(1, 12):02d}{random.randint(1, 28):02d}"
        serial = f"{random.randint(0, 999):03d}"
        pin = f"19{yymmdd}-{serial}{_luhn_check_digit(yymmdd + serial)}"
        if pin not in _pins:
            _pins.add(pin)
            return pin


_pins: set[str] = set()


class GraphQLErrors(AssertionError):
    pass


@dataclass
class Firm:
    id: str
    admin_email: str
    admin: str  # a token of the firm's FIRM_ADMIN


class Api:
    def __init__(self, http: httpx.AsyncClient, runtime: Runtime, *, vendor_client_id: str,
                 app_client_id: str) -> None:
        self.http = http
        self.runtime = runtime
        self.vendor_client_id = vendor_client_id
        self.app_client_id = app_client_id
        self._vendor: str | None = None

    # ------------------------------------------------------------------ tokens

    async def token(self, user_email: str | None = None, scopes: list[str] | None = None,
                    client_id: str | None = None, ttl: int | None = None) -> str:
        from sqlalchemy import select

        from models import User

        client_id = client_id or self.app_client_id
        subject = client_id
        if user_email is not None:
            async with self.runtime.database.sessions() as session:
                user = await session.scalar(select(User).where(User.email_normalized == user_email.lower()))
            assert user is not None, f"no user {user_email}"
            subject = ids.of(user)
        return await self.runtime.tokens.issue(subject=subject, client_id=client_id,
                                               scopes=scopes if scopes is not None else USER_SCOPES, ttl=ttl)

    async def vendor(self) -> str:
        if self._vendor is None:
            self._vendor = await self.token(scopes=list(ALL_SCOPES), client_id=self.vendor_client_id)
        return self._vendor

    # ------------------------------------------------------------------ requests

    async def post(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        all_headers = {"Authorization": f"Bearer {token}"} if token else {}
        all_headers.update(headers or {})
        return await self.http.post("/graphql", json={"query": query, "variables": variables or {}},
                                    headers=all_headers)

    async def gql(self, query: str, variables: dict[str, Any] | None = None, *, token: str) -> dict[str, Any]:
        response = await self.post(query, variables, token)
        body: dict[str, Any] = response.json()
        return body

    async def ok(self, query: str, variables: dict[str, Any] | None = None, *, token: str) -> dict[str, Any]:
        body = await self.gql(query, variables, token=token)
        if body.get("errors"):
            raise GraphQLErrors(body["errors"])
        data: dict[str, Any] = body["data"]
        return data

    async def mutate(self, name: str, input: dict[str, Any], selection: str, *, token: str,
                     expect_errors: bool = False) -> dict[str, Any]:
        """Runs one mutation; unless told otherwise, fails the test on any userError."""
        query = f"mutation($input: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $input) {{ {selection} " \
                f"userErrors {{ code message field }} }} }}"
        payload: dict[str, Any] = (await self.ok(query, {"input": input}, token=token))[name]
        if not expect_errors and payload["userErrors"]:
            raise AssertionError(payload["userErrors"])
        return payload

    # ------------------------------------------------------------------ builders

    async def firm(self, *, reseller: bool = False, certified: bool = False, currency: str = "SEK") -> Firm:
        vendor = await self.vendor()
        created = await self.mutate("createFirm", {"name": unique("Firm "), "country": "SE", "currency": currency},
                                    "firm { id }", token=vendor)
        firm_id = created["firm"]["id"]
        if reseller or certified:
            await self.mutate("updateFirm", {"firmId": firm_id, "hasResellerAgreement": reseller,
                                             "isCertified": certified}, "firm { id }", token=vendor)
        email = unique("admin") + "@firm.example"
        await self.mutate("addFirmStaff", {"firmId": firm_id, "name": "Firm Admin", "email": email,
                                           "role": "FIRM_ADMIN"}, "firmMember { id }", token=vendor)
        return Firm(firm_id, email, await self.token(email))

    async def agreement(self, firm: Firm, *, company: bool = True, billing_mode: str = "CUSTOMER",
                        customer_number: str | None = None) -> tuple[str, str | None]:
        input: dict[str, Any] = {"firmId": firm.id, "name": unique("Customer "), "billingMode": billing_mode}
        if customer_number is not None:
            input["customerNumber"] = customer_number
        if company:
            input["company"] = {"name": unique("Company "), "country": "SE"}
        payload = await self.mutate("createAgreement", input, "agreement { id } company { id }", token=firm.admin)
        return payload["agreement"]["id"], (payload["company"] or {}).get("id")

    async def company(self, firm: Firm, agreement_id: str) -> str:
        payload = await self.mutate("createCompany", {"agreementId": agreement_id,
                                                      "company": {"name": unique("Company "), "country": "SE"}},
                                    "company { id }", token=firm.admin)
        return str(payload["company"]["id"])

    async def subscription(self, firm: Firm, owner_id: str, named: int = 5, concurrent: int = 0,
                           client_user: int = 0, edition: str = "STANDARD") -> str:
        seats = [{"licenseType": t, "count": c} for t, c in
                 (("NAMED", named), ("CONCURRENT", concurrent), ("CLIENT_USER", client_user)) if c]
        payload = await self.mutate("createSubscription", {"ownerId": owner_id, "editionCode": edition,
                                                           "billingInterval": "MONTHLY", "seats": seats},
                                    "subscription { id }", token=firm.admin)
        return str(payload["subscription"]["id"])

    async def invite(self, token: str, company_id: str, *, email: str | None = None, role: str = "REPORTER",
                     license_type: str = "NAMED", expect_errors: bool = False, **extra: Any) -> dict[str, Any]:
        input = {"companyId": company_id, "name": "Invited Person", "role": role, "licenseType": license_type,
                 **extra}
        if email is not None:
            input["email"] = email
        return await self.mutate("inviteUser", input,
                                 "membership { id status role licenseType user { id email } } welcomeEmailQueued",
                                 token=token, expect_errors=expect_errors)
