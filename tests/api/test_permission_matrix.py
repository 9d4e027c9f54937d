"""The permission layer, cell by cell (DESIGN.md section 3).

Every mutation of the contract and a read of every entity type, run by each kind of caller
against one shared world, checked against a table written by hand from the design (not
derived from auth.policy). A cell is DENIED when the request gets a top-level FORBIDDEN,
a NOT_FOUND userError on the object it targets (the object is invisible), or null for a
read; it is ALLOWED when it gets past the permission layer (business-rule userErrors still
count as allowed). A second test drops the one scope each operation needs.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from auth.clients import ALL_SCOPES, register_client
from models import ids
from schema.scopes import SCOPES
from tests.api.client import USER_SCOPES, Api, Firm, new_pin, unique

FA, FV, ADM, ACC, APP, REP = "FIRM_ADMIN", "FIRM_ADVISOR", "ADMINISTRATOR", "ACCOUNTANT", "APPROVER", "REPORTER"
OTHER_FA, OTHER_CC, VENDOR = "OTHER_FIRM_ADMIN", "OTHER_FIRM_CLIENT", "VENDOR"
CALLERS = [FA, FV, ADM, ACC, APP, REP, OTHER_FA, OTHER_CC, VENDOR]
MEMBER_ROLES = [ADM, ACC, APP, REP]
Y, N = True, False
ADDRESS = {"street": "Storgatan 1", "postalCode": "111 22", "city": "Stockholm", "country": "SE"}
OTHER_PIN = new_pin()

# ------------------------------------------------------------------ the expected table
# Columns: FIRM_ADMIN, FIRM_ADVISOR, ADMINISTRATOR, ACCOUNTANT, APPROVER, REPORTER (all company
# roles hold a CONCURRENT membership of the company), FIRM_ADMIN of another firm, a
# client-credentials token of another firm, the vendor (platform:admin).

MUTATIONS: dict[str, tuple[bool, ...]] = {
    #                                   FA FV ADM ACC APP REP OFA OCC VEN
    # vendor back office only
    "createFirm":                      (N, N, N, N, N, N, N, N, Y),
    "upsertEdition":                   (N, N, N, N, N, N, N, N, Y),
    "upsertFeature":                   (N, N, N, N, N, N, N, N, Y),
    "updateFirm(reseller)":            (N, N, N, N, N, N, N, N, Y),
    "updateFirm(certification)":       (N, N, N, N, N, N, N, N, Y),
    "updateFirm(discount)":            (N, N, N, N, N, N, N, N, Y),
    "createSubscription(MARKETPLACE)": (N, N, N, N, N, N, N, N, Y),
    # the firm itself and its staff: firm admins
    "updateFirm(name)":                (Y, N, N, N, N, N, N, N, Y),
    "addFirmStaff":                    (Y, N, N, N, N, N, N, N, Y),
    "removeFirmStaff":                 (Y, N, N, N, N, N, N, N, Y),
    # agreements: create, update, delete, move companies; create companies and subscriptions
    "createAgreement":                 (Y, N, N, N, N, N, N, N, Y),
    "updateAgreement":                 (Y, N, N, N, N, N, N, N, Y),
    "deleteAgreement":                 (Y, N, N, N, N, N, N, N, Y),
    "createCompany":                   (Y, N, N, N, N, N, N, N, Y),
    "moveCompany":                     (Y, N, N, N, N, N, N, N, Y),
    "createSubscription":              (Y, N, N, N, N, N, N, N, Y),
    # update company (name, settings)
    "updateCompany":                   (Y, N, Y, N, N, N, N, N, Y),
    # change seats, edition, features
    "changeSeats":                     (Y, N, Y, N, N, N, N, N, Y),
    "changeEdition":                   (Y, N, Y, N, N, N, N, N, Y),
    "cancelScheduledChange":           (Y, N, Y, N, N, N, N, N, Y),
    "setFeature":                      (Y, N, Y, N, N, N, N, N, Y),
    # manage members, invite
    "inviteUser":                      (Y, Y, Y, N, N, N, N, N, Y),
    "grantAccountantAccess":           (Y, Y, Y, N, N, N, N, N, Y),
    "grantAccountantAccess(until)":    (Y, Y, Y, N, N, N, N, N, Y),
    "revokeAccountantAccess":          (Y, Y, Y, N, N, N, N, N, Y),
    "updateMembership":                (Y, Y, Y, N, N, N, N, N, Y),
    "deactivateMembership":            (Y, Y, Y, N, N, N, N, N, Y),
    "reactivateMembership":            (Y, Y, Y, N, N, N, N, N, Y),
    "resendWelcomeEmail":              (Y, Y, Y, N, N, N, N, N, Y),
    # client users
    "assignClientUser":                (Y, N, N, N, N, N, N, N, Y),
    "addClientUserCompany":            (Y, N, N, N, N, N, N, N, Y),
    "removeClientUserCompany":         (Y, N, N, N, N, N, N, N, Y),
    # own concurrent sessions: any role whose membership is CONCURRENT. The vendor passes the
    # role check for startSession (and is then told it acts for no user); a session is only
    # ever its own user's, so renew/end of someone else's session is invisible to everyone.
    "startSession":                    (N, N, Y, Y, Y, Y, N, N, Y),
    "renewSession":                    (N, N, Y, Y, Y, Y, N, N, N),
    "endSession":                      (N, N, Y, Y, Y, Y, N, N, N),
    # billing details
    "updateBillingDetails":            (Y, N, Y, N, N, N, N, N, Y),
    # the role ceiling: nobody grants, or acts on, a role with rights it lacks itself
    "inviteUser(ADMINISTRATOR)":       (Y, N, Y, N, N, N, N, N, Y),
    "inviteUser(ACCOUNTANT)":          (Y, Y, Y, N, N, N, N, N, Y),
    "updateMembership(to ADMINISTRATOR)": (Y, N, Y, N, N, N, N, N, Y),
    "deactivateMembership(ADMINISTRATOR)": (Y, N, Y, N, N, N, N, N, Y),
    # allowed callers are then told it is no accountant's (INVALID_INPUT); a FIRM_ADVISOR is not
    "revokeAccountantAccess(ADMINISTRATOR)": (Y, N, Y, N, N, N, N, N, Y),
    # one's own account: any signed-in user, never a token without one
    "requestEmailChange":              (Y, Y, Y, Y, Y, Y, Y, N, N),
    # identities are corrected by the vendor only
    "correctUserIdentity":             (N, N, N, N, N, N, N, N, Y),
    # the lifecycle: ending a licence and archiving are the firm admin's, at once the vendor's
    "cancelSubscription":              (Y, N, N, N, N, N, N, N, Y),
    "cancelSubscription(immediately)": (N, N, N, N, N, N, N, N, Y),
    "changeBillingInterval":           (Y, N, Y, N, N, N, N, N, Y),
    "archiveCompany":                  (Y, N, N, N, N, N, N, N, Y),
    "unarchiveCompany":                (Y, N, N, N, N, N, N, N, Y),
    "archiveAgreement":                (Y, N, N, N, N, N, N, N, Y),
    "unarchiveAgreement":              (Y, N, N, N, N, N, N, N, Y),
    "removeClientUser":                (Y, N, N, N, N, N, N, N, Y),
    "issueCreditNote":                 (N, N, N, N, N, N, N, N, Y),
    # transfers: offered and withdrawn by the agreement's firm, accepted or declined by the other
    "offerAgreementTransfer":          (Y, N, N, N, N, N, N, N, Y),
    "withdrawAgreementTransfer":       (Y, N, N, N, N, N, N, N, Y),
    "acceptAgreementTransfer":         (Y, N, N, N, N, N, N, N, Y),
    "declineAgreementTransfer":        (Y, N, N, N, N, N, N, N, Y),
    # webhooks (R67): the firm's admins
    "createWebhookEndpoint":           (Y, N, N, N, N, N, N, N, Y),
    "updateWebhookEndpoint":           (Y, N, N, N, N, N, N, N, Y),
    "deleteWebhookEndpoint":           (Y, N, N, N, N, N, N, N, Y),
    "rollWebhookSecret":               (Y, N, N, N, N, N, N, N, Y),
    "redeliverWebhook":                (Y, N, N, N, N, N, N, N, Y),
}

# Fields with a read rule of their own (auth.policy.FIELD_READS), read through node(id) of
# the world's firm or agreement: billing details for FIRM_ADMIN and ADMINISTRATOR (a firm's
# own only for its staff); the firm's commercial terms for firm staff; its name for everyone
# who may read the firm.
FIELDS: dict[str, tuple[bool, ...]] = {
    #                                   FA FV ADM ACC APP REP OFA OCC VEN
    "Firm.name":                       (Y, Y, Y, Y, Y, Y, N, N, Y),
    "Firm.billingDetails":             (Y, N, N, N, N, N, N, N, Y),
    "Agreement.billingDetails":        (Y, N, Y, N, N, N, N, N, Y),
    "Firm.resellerDiscountPercent":    (Y, Y, N, N, N, N, N, N, Y),
    "Firm.hasResellerAgreement":       (Y, Y, N, N, N, N, N, N, Y),
    "Firm.masterSubscription":         (Y, Y, N, N, N, N, N, N, Y),
    "Firm.invoices":                   (Y, Y, N, N, N, N, N, N, Y),
    "Firm.upcomingInvoice":            (Y, Y, N, N, N, N, N, N, Y),
    "Firm.auditLog":                   (Y, Y, N, N, N, N, N, N, Y),
    "Firm.staff":                      (Y, Y, N, N, N, N, N, N, Y),
    "Firm.clientUsers":                (Y, N, N, N, N, N, N, N, Y),
}

FIELD_SELECTION = {
    "name": "name", "billingDetails": "billingDetails { billingEmail }",
    "resellerDiscountPercent": "resellerDiscountPercent", "hasResellerAgreement": "hasResellerAgreement",
    "masterSubscription": "masterSubscription { id }", "invoices": "invoices { edges { node { id } } }",
    "upcomingInvoice": "upcomingInvoice { total { amount } }", "auditLog": "auditLog { edges { node { id } } }",
    "staff": "staff { edges { node { id } } }", "clientUsers": "clientUsers { edges { node { id } } }",
}

READS: dict[str, tuple[bool, ...]] = {
    #                      FA FV ADM ACC APP REP OFA OCC VEN
    # company members read their company's firm and agreement
    "Firm":               (Y, Y, Y, Y, Y, Y, N, N, Y),
    # the firm's staff records: firm staff
    "FirmMember":         (Y, Y, N, N, N, N, N, N, Y),
    # "client users": FIRM_ADMIN yes, FIRM_ADVISOR no
    "ClientUser":         (Y, N, N, N, N, N, N, N, Y),
    "Agreement":          (Y, Y, Y, Y, Y, Y, N, N, Y),
    "Company":            (Y, Y, Y, Y, Y, Y, N, N, Y),
    # a REPORTER's co-worker: REPORTER reads its own membership only, so not this user
    "User":               (Y, Y, Y, Y, Y, N, N, N, Y),
    "Membership":         (Y, Y, Y, Y, Y, N, N, N, Y),
    # read subscription, orders, invoices, audit
    "LicenseSubscription": (Y, Y, Y, Y, N, N, N, N, Y),
    "Order":              (Y, Y, Y, Y, N, N, N, N, Y),
    "Invoice":            (Y, Y, Y, Y, N, N, N, N, Y),
    "AuditEvent":         (Y, Y, Y, Y, N, N, N, N, Y),
    # the caller's own session where it has one, else another member's session in the company
    "LicenseSession":     (Y, Y, Y, Y, Y, Y, N, N, Y),
    # a transfer offer: the staff of both firms (here the world's firm offers, the other receives)
    "AgreementTransfer":  (Y, Y, N, N, N, N, Y, Y, Y),
    # webhook endpoints (R67): the firm's admins only
    "WebhookEndpoint":    (Y, N, N, N, N, N, N, N, Y),
}

READ_FIELD = {"Firm": "name", "FirmMember": "role", "ClientUser": "maxCompanies", "Agreement": "name",
              "Company": "name", "User": "name", "Membership": "role", "LicenseSubscription": "status",
              "Order": "number", "Invoice": "number", "AuditEvent": "action", "LicenseSession": "startedAt",
              "AgreementTransfer": "status", "WebhookEndpoint": "url"}

# Cells where the code is known to disagree with the design: (row, caller) -> reason.
# Cells where the code is known to disagree with the table (strict xfail); none at present.
KNOWN_HOLES: dict[tuple[str, str], str] = {}


# ------------------------------------------------------------------ the shared world

@dataclass
class World:
    api: Api
    firm: Firm
    agreement_id: str
    company_id: str
    company2_id: str
    subscription_id: str
    target_membership_id: str
    target_user_id: str
    firm_member_id: str
    client_user_id: str
    order_id: str
    invoice_id: str
    audit_event_id: str
    owner_token: str
    owner_session_id: str
    other_firm: Firm
    other_bankid_user_id: str
    transfer_id: str
    tokens: dict[str, str] = field(default_factory=dict)
    webhook_endpoint_id: str = ""


async def _staff(api: Api, firm_id: str, role: str) -> tuple[str, str]:
    email = unique(role.lower()) + "@staff.example"
    payload = await api.mutate("addFirmStaff", {"firmId": firm_id, "name": "Staff", "email": email, "role": role},
                               "firmMember { id }", token=await api.vendor())
    return email, payload["firmMember"]["id"]


async def _member(api: Api, firm: Firm, company_id: str, role: str, license_type: str) -> tuple[str, dict[str, Any]]:
    email = unique(role.lower()) + "@member.example"
    payload = await api.invite(firm.admin, company_id, email=email, role=role, license_type=license_type)
    return email, payload["membership"]


async def _start(api: Api, token: str, company_id: str) -> str:
    payload = await api.mutate("startSession", {"companyId": company_id}, "session { id }", token=token)
    return str(payload["session"]["id"])


@pytest.fixture(scope="session")
async def world(api: Api) -> World:
    from models import Invoice
    from models.enums import BillingMode

    vendor = await api.vendor()
    firm = await api.firm(reseller=True, certified=True)
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    company2_id = await api.company(firm, agreement_id)
    subscription_id = await api.subscription(firm, agreement_id, named=400, concurrent=10)
    await api.subscription(firm, firm.id, named=0, client_user=50)

    tokens = {FA: firm.admin, VENDOR: vendor}
    advisor_email, _ = await _staff(api, firm.id, FV)
    tokens[FV] = await api.token(advisor_email)
    _, firm_member_id = await _staff(api, firm.id, FV)
    for role in MEMBER_ROLES:
        email, _ = await _member(api, firm, company_id, role, "CONCURRENT")
        tokens[role] = await api.token(email)
    _, target = await _member(api, firm, company_id, REP, "NAMED")
    owner_email, _ = await _member(api, firm, company_id, REP, "CONCURRENT")
    owner_token = await api.token(owner_email)
    owner_session_id = await _start(api, owner_token, company_id)

    other = await api.firm()
    tokens[OTHER_FA] = other.admin
    async with api.runtime.database.sessions.begin() as session:
        client = await register_client(session, name=unique("other dashboard "), scopes=USER_SCOPES,
                                       firm_id=ids.decode(other.id)[1])
    tokens[OTHER_CC] = await api.token(scopes=USER_SCOPES, client_id=client.client_id)

    await api.mutate("updateBillingDetails", {"ownerId": firm.id, "billingContactName": "Firm Billing",
                                              "billingEmail": "billing@firm.example", "invoiceAddress": ADDRESS},
                     "billingDetails { billingEmail }", token=firm.admin)
    await api.mutate("updateBillingDetails", {"ownerId": agreement_id, "billingContactName": "Customer Billing",
                                              "billingEmail": "billing@customer.example", "invoiceAddress": ADDRESS},
                     "billingDetails { billingEmail }", token=firm.admin)
    other_agreement, other_company = await api.agreement(other)
    assert other_company is not None
    await api.subscription(other, other_agreement, named=5)
    bankid = await api.invite(other.admin, other_company, personalIdentityNumber=OTHER_PIN, role=ADM)
    client_user = await api.mutate("assignClientUser", {"firmId": firm.id, "name": "Client Person",
                                                        "email": unique("client") + "@client.example",
                                                        "companyIds": [company_id]},
                                   "clientUser { id }", token=firm.admin)
    order = await api.mutate("changeSeats", {"subscriptionId": subscription_id, "licenseType": "NAMED", "seats": 401},
                             "order { id }", token=firm.admin)
    audit = await api.ok("query($id: ID!) { node(id: $id) { ... on LicenseSubscription { auditLog { edges { "
                         "node { id } } } } } }", {"id": subscription_id}, token=firm.admin)
    async with api.runtime.database.sessions.begin() as session:
        invoice = Invoice(firm_id=ids.decode(firm.id)[1], agreement_id=ids.decode(agreement_id)[1],
                          billing_account=f"agreement:{ids.decode(agreement_id)[1]}",
                          billing_mode=BillingMode.CUSTOMER, number=unique("PM-"), period_start=date(2020, 1, 1),
                          period_end=date(2020, 2, 1), currency="SEK", total=Decimal("0.00"),
                          issued_at=datetime(2020, 2, 1, tzinfo=UTC))
        session.add(invoice)
        session.add(Invoice(firm_id=ids.decode(firm.id)[1], agreement_id=None, billing_account="firm",
                            billing_mode=BillingMode.FIRM, number=unique("PM-"), period_start=date(2020, 1, 1),
                            period_end=date(2020, 2, 1), currency="SEK", total=Decimal("0.00"),
                            issued_at=datetime(2020, 2, 1, tzinfo=UTC)))
        await session.flush()
        invoice_id = ids.of(invoice)
    return World(api=api, firm=firm, agreement_id=agreement_id, company_id=company_id, company2_id=company2_id,
                 subscription_id=subscription_id, target_membership_id=target["id"],
                 target_user_id=target["user"]["id"], firm_member_id=firm_member_id,
                 client_user_id=client_user["clientUser"]["id"], order_id=order["order"]["id"],
                 invoice_id=invoice_id, audit_event_id=audit["node"]["auditLog"]["edges"][0]["node"]["id"],
                 owner_token=owner_token, owner_session_id=owner_session_id, other_firm=other,
                 other_bankid_user_id=bankid["membership"]["user"]["id"],
                 transfer_id=await _offer(api, firm, other.id), tokens=tokens,
                 webhook_endpoint_id=await _webhook_endpoint(api, firm.id))


# ------------------------------------------------------------------ inputs, one per mutation row

async def _fresh_membership(w: World) -> str:
    _, membership = await _member(w.api, w.firm, w.company_id, REP, "NAMED")
    return str(membership["id"])


async def _session_of(w: World, caller: str) -> str:
    """The caller's own live session when it may have one, else the owner's."""
    if caller in MEMBER_ROLES:
        return await _start(w.api, w.tokens[caller], w.company_id)
    return await _start(w.api, w.owner_token, w.company_id)


async def _scheduled_decrease(w: World) -> None:
    await w.api.mutate("changeSeats", {"subscriptionId": w.subscription_id, "licenseType": "NAMED", "seats": 400},
                       "scheduledChange { kind }", token=await w.api.vendor())


async def _client_user_in_company2(w: World) -> None:
    await w.api.mutate("addClientUserCompany", {"clientUserId": w.client_user_id, "companyId": w.company2_id},
                       "clientUser { id }", token=await w.api.vendor(), expect_errors=True)


EDITION = {"code": "STANDARD", "name": "Standard", "includedFileStorageGb": 10, "validFrom": "2020-01-01",
           "seatPrices": [{"amount": "149.00", "currency": "SEK"}, {"amount": "149.00", "currency": "NOK"},
                          {"amount": "14.00", "currency": "EUR"}]}
FEATURE = {"code": "PAYROLL", "name": "Payroll", "kind": "FEATURE", "validFrom": "2020-01-01",
           "monthlyPrices": [{"amount": "99.00", "currency": "SEK"}, {"amount": "99.00", "currency": "NOK"},
                             {"amount": "9.00", "currency": "EUR"}]}

# row -> (the mutation, the input field naming its target, the input for a caller)
Build = Callable[[World, str], Awaitable[dict[str, Any]]]


async def _offer(api: Api, firm: Firm, to_firm_id: str) -> str:
    agreement_id, _ = await api.agreement(firm, company=False)
    offered = await api.mutate("offerAgreementTransfer", {"agreementId": agreement_id, "toFirmId": to_firm_id},
                               "transfer { id }", token=firm.admin)
    return str(offered["transfer"]["id"])


async def _fresh_company(w: World, caller: str) -> dict[str, Any]:
    return {"companyId": await w.api.company(w.firm, w.agreement_id)}


async def _archived_company(w: World, caller: str) -> dict[str, Any]:
    company_id = await w.api.company(w.firm, w.agreement_id)
    await w.api.mutate("archiveCompany", {"companyId": company_id}, "company { id }", token=w.firm.admin)
    return {"companyId": company_id}


async def _fresh_agreement(w: World, caller: str) -> dict[str, Any]:
    return {"agreementId": (await w.api.agreement(w.firm, company=False))[0]}


async def _archived_agreement(w: World, caller: str) -> dict[str, Any]:
    agreement_id = (await w.api.agreement(w.firm, company=False))[0]
    await w.api.mutate("archiveAgreement", {"agreementId": agreement_id}, "agreement { id }", token=w.firm.admin)
    return {"agreementId": agreement_id}


async def _fresh_client_user(w: World, caller: str) -> dict[str, Any]:
    assigned = await w.api.mutate("assignClientUser", {"firmId": w.firm.id, "name": "Client", "email": _new_email(),
                                                       "companyIds": [w.company2_id]}, "clientUser { id }",
                                  token=w.firm.admin)
    return {"clientUserId": assigned["clientUser"]["id"]}


async def _offer_input(w: World, caller: str) -> dict[str, Any]:
    return {**await _fresh_agreement(w, caller), "toFirmId": w.other_firm.id}


async def _incoming_offer(w: World, caller: str) -> dict[str, Any]:
    """An offer from the other firm to the world's firm: the world's firm decides it."""
    return {"transferId": await _offer(w.api, w.other_firm, w.firm.id)}


async def _outgoing_offer(w: World, caller: str) -> dict[str, Any]:
    return {"transferId": await _offer(w.api, w.firm, w.other_firm.id)}


async def _webhook_endpoint(api: Api, firm_id: str) -> str:
    """A disabled endpoint written directly (to a private address, so no worker ever sends to it)."""
    from models import WebhookEndpoint

    async with api.runtime.database.sessions.begin() as session:
        endpoint = WebhookEndpoint(firm_id=ids.decode(firm_id)[1], url="https://10.0.0.1/hooks", event_types="ARCHIVED",
                                   enabled=False, secret_encrypted="not used")
        session.add(endpoint)
        await session.flush()
        return ids.of(endpoint)


async def _fresh_webhook_endpoint(w: World, caller: str) -> dict[str, Any]:
    return {"webhookEndpointId": await _webhook_endpoint(w.api, w.firm.id)}


async def _webhook_delivery(w: World, caller: str) -> dict[str, Any]:
    from models import WebhookDelivery, WebhookEvent

    firm_pk, endpoint_pk = ids.decode(w.firm.id)[1], ids.decode(w.webhook_endpoint_id)[1]
    async with w.api.runtime.database.sessions.begin() as session:
        event = WebhookEvent(firm_id=firm_pk, event_key=f"evt_{unique('matrix')}", event_type="ARCHIVED",
                             subject_id=w.company_id, sequence=1, occurred_at=datetime.now(UTC), body="{}")
        session.add(event)
        await session.flush()
        delivery = WebhookDelivery(firm_id=firm_pk, endpoint_id=endpoint_pk, event_id=event.id,
                                   created_at=datetime.now(UTC), attempts=0)
        session.add(delivery)
        await session.flush()
        return {"deliveryId": ids.of(delivery)}


def _const(make: Callable[[World], dict[str, Any]]) -> Build:
    async def build(w: World, caller: str) -> dict[str, Any]:
        return make(w)
    return build


async def _remove_staff(w: World, caller: str) -> dict[str, Any]:
    return {"firmMemberId": (await _staff(w.api, w.firm.id, FV))[1]}


async def _deactivate(w: World, caller: str) -> dict[str, Any]:
    return {"membershipId": await _fresh_membership(w)}


def _deactivate_to(make: Callable[[str], dict[str, Any]]) -> Build:
    """An input naming a fresh REPORTER membership."""
    async def build(w: World, caller: str) -> dict[str, Any]:
        return make(await _fresh_membership(w))
    return build


async def _cancel(w: World, caller: str) -> dict[str, Any]:
    await _scheduled_decrease(w)
    return {"subscriptionId": w.subscription_id, "kind": "SEAT_DECREASE", "licenseType": "NAMED"}


async def _remove_client_company(w: World, caller: str) -> dict[str, Any]:
    await _client_user_in_company2(w)
    return {"clientUserId": w.client_user_id, "companyId": w.company2_id}


async def _session(w: World, caller: str) -> dict[str, Any]:
    return {"sessionId": await _session_of(w, caller)}


def _new_email() -> str:
    return unique("matrix") + "@new.example"


async def _fresh_administrator(w: World, caller: str) -> dict[str, Any]:
    _, membership = await _member(w.api, w.firm, w.company_id, ADM, "NAMED")
    return {"membershipId": membership["id"]}


async def _fresh_accountant(w: World, caller: str) -> dict[str, Any]:
    payload = await w.api.mutate("grantAccountantAccess", {
        "companyId": w.company_id, "name": "Accountant", "email": _new_email(),
        "until": (w.api.runtime.today() + timedelta(days=30)).isoformat()}, "membership { id }", token=w.firm.admin)
    return {"membershipId": payload["membership"]["id"]}


async def _fresh_user(w: World, caller: str) -> dict[str, Any]:
    _, membership = await _member(w.api, w.firm, w.company_id, REP, "NAMED")
    return {"userId": membership["user"]["id"], "email": _new_email()}


CASES: dict[str, tuple[str, str, Build]] = {
    "createFirm": ("createFirm", "", _const(lambda w: {"name": unique("Matrix firm "), "country": "SE",
                                                       "currency": "SEK"})),
    "upsertEdition": ("upsertEdition", "", _const(lambda w: EDITION)),
    "upsertFeature": ("upsertFeature", "", _const(lambda w: FEATURE)),
    "updateFirm(reseller)": ("updateFirm", "firmId", _const(lambda w: {"firmId": w.firm.id,
                                                                       "hasResellerAgreement": True})),
    "updateFirm(certification)": ("updateFirm", "firmId", _const(lambda w: {"firmId": w.firm.id,
                                                                            "isCertified": True})),
    "updateFirm(discount)": ("updateFirm", "firmId", _const(lambda w: {"firmId": w.firm.id,
                                                                       "resellerDiscountPercent": "0"})),
    "createSubscription(MARKETPLACE)": ("createSubscription", "ownerId", _const(lambda w: {
        "ownerId": w.agreement_id, "editionCode": "STANDARD", "billingInterval": "MONTHLY", "channel": "MARKETPLACE",
        "seats": [{"licenseType": "NAMED", "count": 1}]})),
    "updateFirm(name)": ("updateFirm", "firmId", _const(lambda w: {"firmId": w.firm.id, "name": unique("Firm ")})),
    "addFirmStaff": ("addFirmStaff", "firmId", _const(lambda w: {"firmId": w.firm.id, "name": "New Staff",
                                                                 "email": _new_email(), "role": "FIRM_ADVISOR"})),
    "removeFirmStaff": ("removeFirmStaff", "firmMemberId", _remove_staff),
    "createAgreement": ("createAgreement", "firmId", _const(lambda w: {"firmId": w.firm.id, "name": unique("Cust "),
                                                                       "billingMode": "CUSTOMER"})),
    "updateAgreement": ("updateAgreement", "agreementId", _const(lambda w: {"agreementId": w.agreement_id,
                                                                            "name": unique("Customer ")})),
    # the agreement has companies: an allowed caller is refused with AGREEMENT_NOT_EMPTY
    "deleteAgreement": ("deleteAgreement", "agreementId", _const(lambda w: {"agreementId": w.agreement_id})),
    "createCompany": ("createCompany", "agreementId", _const(lambda w: {
        "agreementId": w.agreement_id, "company": {"name": unique("Company "), "country": "SE"}})),
    # into the agreement it is already in: changes nothing for an allowed caller
    "moveCompany": ("moveCompany", "companyId", _const(lambda w: {"companyId": w.company_id,
                                                                  "toAgreementId": w.agreement_id})),
    # the agreement already has one: an allowed caller gets a business-rule refusal
    "createSubscription": ("createSubscription", "ownerId", _const(lambda w: {
        "ownerId": w.agreement_id, "editionCode": "STANDARD", "billingInterval": "MONTHLY",
        "seats": [{"licenseType": "NAMED", "count": 1}]})),
    "updateCompany": ("updateCompany", "companyId", _const(lambda w: {"companyId": w.company_id,
                                                                      "name": unique("Company ")})),
    "changeSeats": ("changeSeats", "subscriptionId", _const(lambda w: {
        "subscriptionId": w.subscription_id, "licenseType": "NAMED", "seats": 450, "dryRun": True})),
    "changeEdition": ("changeEdition", "subscriptionId", _const(lambda w: {
        "subscriptionId": w.subscription_id, "editionCode": "PLUS", "dryRun": True})),
    "cancelScheduledChange": ("cancelScheduledChange", "subscriptionId", _cancel),
    "setFeature": ("setFeature", "subscriptionId", _const(lambda w: {
        "subscriptionId": w.subscription_id, "featureCode": "PAYROLL", "enabled": True, "dryRun": True})),
    "inviteUser": ("inviteUser", "companyId", _const(lambda w: {
        "companyId": w.company_id, "name": "Invitee", "email": _new_email(), "role": "REPORTER",
        "licenseType": "NAMED"})),
    "grantAccountantAccess": ("grantAccountantAccess", "companyId", _const(lambda w: {
        "companyId": w.company_id, "name": "Accountant", "email": _new_email()})),
    "grantAccountantAccess(until)": ("grantAccountantAccess", "companyId", _const(lambda w: {
        "companyId": w.company_id, "name": "Accountant", "email": _new_email(),
        "until": (w.api.runtime.today() + timedelta(days=7)).isoformat()})),
    "revokeAccountantAccess": ("revokeAccountantAccess", "membershipId", _fresh_accountant),
    "revokeAccountantAccess(ADMINISTRATOR)": ("revokeAccountantAccess", "membershipId", _fresh_administrator),
    "updateMembership": ("updateMembership", "membershipId", _const(lambda w: {
        "membershipId": w.target_membership_id, "employeeNumber": unique("E")})),
    "deactivateMembership": ("deactivateMembership", "membershipId", _deactivate),
    # the target is not deactivated: an allowed caller gets a business-rule refusal or a no-op
    "reactivateMembership": ("reactivateMembership", "membershipId", _const(lambda w: {
        "membershipId": w.target_membership_id})),
    "resendWelcomeEmail": ("resendWelcomeEmail", "membershipId", _const(lambda w: {
        "membershipId": w.target_membership_id})),
    "assignClientUser": ("assignClientUser", "firmId", _const(lambda w: {
        "firmId": w.firm.id, "name": "Client", "email": _new_email(), "companyIds": [w.company_id]})),
    "addClientUserCompany": ("addClientUserCompany", "clientUserId", _const(lambda w: {
        "clientUserId": w.client_user_id, "companyId": w.company2_id})),
    "removeClientUserCompany": ("removeClientUserCompany", "clientUserId", _remove_client_company),
    "startSession": ("startSession", "companyId", _const(lambda w: {"companyId": w.company_id})),
    "renewSession": ("renewSession", "sessionId", _session),
    "endSession": ("endSession", "sessionId", _session),
    "updateBillingDetails": ("updateBillingDetails", "ownerId", _const(lambda w: {
        "ownerId": w.agreement_id, "billingContactName": "Billing", "billingEmail": "billing@x.example",
        "invoiceAddress": ADDRESS})),
    "inviteUser(ADMINISTRATOR)": ("inviteUser", "companyId", _const(lambda w: {
        "companyId": w.company_id, "name": "Invitee", "email": _new_email(), "role": "ADMINISTRATOR",
        "licenseType": "NAMED"})),
    "inviteUser(ACCOUNTANT)": ("inviteUser", "companyId", _const(lambda w: {
        "companyId": w.company_id, "name": "Invitee", "email": _new_email(), "role": "ACCOUNTANT",
        "licenseType": "NAMED"})),
    "updateMembership(to ADMINISTRATOR)": ("updateMembership", "membershipId", _deactivate_to(
        lambda membership_id: {"membershipId": membership_id, "role": "ADMINISTRATOR"})),
    "deactivateMembership(ADMINISTRATOR)": ("deactivateMembership", "membershipId", _fresh_administrator),
    "requestEmailChange": ("requestEmailChange", "email", _const(lambda w: {"email": _new_email()})),
    "correctUserIdentity": ("correctUserIdentity", "userId", _fresh_user),
    "cancelSubscription": ("cancelSubscription", "subscriptionId", _const(lambda w: {
        "subscriptionId": w.subscription_id, "dryRun": True})),
    "cancelSubscription(immediately)": ("cancelSubscription", "subscriptionId", _const(lambda w: {
        "subscriptionId": w.subscription_id, "immediately": True, "dryRun": True})),
    "changeBillingInterval": ("changeBillingInterval", "subscriptionId", _const(lambda w: {
        "subscriptionId": w.subscription_id, "billingInterval": "YEARLY", "dryRun": True})),
    "archiveCompany": ("archiveCompany", "companyId", _fresh_company),
    "unarchiveCompany": ("unarchiveCompany", "companyId", _archived_company),
    "archiveAgreement": ("archiveAgreement", "agreementId", _fresh_agreement),
    "unarchiveAgreement": ("unarchiveAgreement", "agreementId", _archived_agreement),
    "removeClientUser": ("removeClientUser", "clientUserId", _fresh_client_user),
    # the world's invoice has no lines: an allowed caller is told so
    "issueCreditNote": ("issueCreditNote", "invoiceId", _const(lambda w: {
        "invoiceId": w.invoice_id, "lines": [{"position": 1}], "reason": "A correction"})),
    "offerAgreementTransfer": ("offerAgreementTransfer", "agreementId", _offer_input),
    "withdrawAgreementTransfer": ("withdrawAgreementTransfer", "transferId", _outgoing_offer),
    "acceptAgreementTransfer": ("acceptAgreementTransfer", "transferId", _incoming_offer),
    "declineAgreementTransfer": ("declineAgreementTransfer", "transferId", _incoming_offer),
    # a private address: an allowed caller gets INVALID_INPUT, past the permission layer
    "createWebhookEndpoint": ("createWebhookEndpoint", "firmId", _const(lambda w: {
        "firmId": w.firm.id, "url": "https://10.0.0.1/hooks", "eventTypes": ["ARCHIVED"]})),
    "updateWebhookEndpoint": ("updateWebhookEndpoint", "webhookEndpointId", _const(lambda w: {
        "webhookEndpointId": w.webhook_endpoint_id, "enabled": False})),
    "deleteWebhookEndpoint": ("deleteWebhookEndpoint", "webhookEndpointId", _fresh_webhook_endpoint),
    "rollWebhookSecret": ("rollWebhookSecret", "webhookEndpointId", _fresh_webhook_endpoint),
    "redeliverWebhook": ("redeliverWebhook", "deliveryId", _webhook_delivery),
}


def _read_target(w: World, type_name: str) -> str:
    return {"Firm": w.firm.id, "FirmMember": w.firm_member_id, "ClientUser": w.client_user_id,
            "Agreement": w.agreement_id, "Company": w.company_id, "User": w.target_user_id,
            "Membership": w.target_membership_id, "LicenseSubscription": w.subscription_id, "Order": w.order_id,
            "Invoice": w.invoice_id, "AuditEvent": w.audit_event_id, "LicenseSession": w.owner_session_id,
            "AgreementTransfer": w.transfer_id, "WebhookEndpoint": w.webhook_endpoint_id}[type_name]


def mutation_document(name: str) -> str:
    return (f"mutation($input: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $input) "
            f"{{ userErrors {{ code field message }} }} }}")


def read_document(type_name: str) -> str:
    return f"query($id: ID!) {{ node(id: $id) {{ id ... on {type_name} {{ {READ_FIELD[type_name]} }} }} }}"


def mutation_verdict(body: dict[str, Any], name: str, target_field: str) -> bool:
    """True when the mutation got past the permission layer, False when it was denied."""
    errors = body.get("errors")
    if errors:
        assert [e.get("extensions", {}).get("code") for e in errors] == ["FORBIDDEN"], errors
        return False
    user_errors = body["data"][name]["userErrors"]
    not_found = [e for e in user_errors if e["code"] == "NOT_FOUND"]
    if any(e["field"] == ["input", target_field] for e in not_found):
        return False
    assert not not_found, f"the cell's input refers to something missing: {user_errors}"
    return True


def _cells(table: dict[str, tuple[bool, ...]]) -> list[Any]:
    cells = []
    for row, expected in table.items():
        assert len(expected) == len(CALLERS), row
        for caller, allowed in zip(CALLERS, expected, strict=True):
            marks = []
            if (row, caller) in KNOWN_HOLES:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_HOLES[(row, caller)]))
            cells.append(pytest.param(row, caller, allowed, id=f"{row}-{caller}", marks=marks))
    return cells


def test_the_table_covers_every_mutation_and_entity() -> None:
    mutations = set(SCOPES["Mutation"])
    assert {CASES[row][0] for row in MUTATIONS} == mutations
    assert set(MUTATIONS) == set(CASES)
    assert set(READS) == set(READ_FIELD) and set(READS) <= set(SCOPES)
    assert len(READS) == 14


@pytest.mark.parametrize(("row", "caller", "allowed"), _cells(MUTATIONS))
async def test_mutation_permissions(world: World, row: str, caller: str, allowed: bool) -> None:
    name, target_field, build = CASES[row]
    input = await build(world, caller)
    body = await world.api.gql(mutation_document(name), {"input": input}, token=world.tokens[caller])
    verdict = mutation_verdict(body, name, target_field)
    assert verdict is allowed, f"{row} by {caller}: expected {'ALLOWED' if allowed else 'DENIED'}, got {body}"


@pytest.mark.parametrize(("row", "caller", "allowed"), _cells(READS))
async def test_read_permissions(world: World, row: str, caller: str, allowed: bool) -> None:
    target = _read_target(world, row)
    if row == "LicenseSession" and caller in MEMBER_ROLES:
        target = await _session_of(world, caller)
    body = await world.api.gql(read_document(row), {"id": target}, token=world.tokens[caller])
    assert not body.get("errors"), body
    node = body["data"]["node"]
    assert (node is not None) is allowed, f"{row} read by {caller}: expected {'ALLOWED' if allowed else 'DENIED'}"
    if node is not None:
        assert node["id"] == target and READ_FIELD[row] in node


# ------------------------------------------------------------------ one scope short

def _scope_cells() -> list[Any]:
    cells = [pytest.param("mutation", row, SCOPES["Mutation"][CASES[row][0]], id=row) for row in MUTATIONS]
    cells += [pytest.param("read", row, SCOPES[row]["*"], id=row) for row in READS]
    return cells


@pytest.mark.parametrize(("kind", "row", "needed"), _scope_cells())
async def test_a_token_without_the_needed_scope_is_forbidden(world: World, kind: str, row: str,
                                                             needed: str) -> None:
    api = world.api
    token = await api.token(scopes=[s for s in ALL_SCOPES if s != needed], client_id=api.vendor_client_id)
    if kind == "mutation":
        name, _, build = CASES[row]
        body = await api.gql(mutation_document(name), {"input": await build(world, FA)}, token=token)
    else:
        body = await api.gql(read_document(row), {"id": _read_target(world, row)}, token=token)
    assert body.get("data") is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["missingScopes"] == [needed]


# ------------------------------------------------------------------ field-level reads

def field_document(row: str) -> str:
    type_name, field_name = row.split(".")
    return f"query($id: ID!) {{ node(id: $id) {{ ... on {type_name} {{ {FIELD_SELECTION[field_name]} }} }} }}"


def _readable(value: Any) -> bool:
    if isinstance(value, dict) and "edges" in value:
        return bool(value["edges"])
    return value is not None


@pytest.mark.parametrize(("row", "caller", "allowed"), _cells(FIELDS))
async def test_field_read_permissions(world: World, row: str, caller: str, allowed: bool) -> None:
    type_name, field_name = row.split(".")
    target = world.firm.id if type_name == "Firm" else world.agreement_id
    body = await world.api.gql(field_document(row), {"id": target}, token=world.tokens[caller])
    for error in body.get("errors") or []:  # a field that cannot be null is refused with FORBIDDEN
        assert error["extensions"]["code"] == "FORBIDDEN", body
    node = (body.get("data") or {}).get("node")
    verdict = node is not None and _readable(node.get(field_name))
    assert verdict is allowed, f"{row} read by {caller}: expected {'ALLOWED' if allowed else 'DENIED'}, got {body}"


def test_the_field_table_covers_every_field_rule() -> None:
    from auth.policy import FIELD_READS

    assert {f"{t}.{f}" for t, f in FIELD_READS} == set(FIELDS) - {"Firm.name"}


# ------------------------------------------------------------------ identity across firms

INVITERS = [FA, FV, ADM, VENDOR]


@pytest.mark.parametrize("caller", INVITERS)
@pytest.mark.parametrize("attempt", ["their number, our email", "their email, our number"])
async def test_no_caller_attaches_an_identity_to_another_firms_user(world: World, caller: str,
                                                                    attempt: str) -> None:
    """The takeover: naming another firm's user by one identifier and giving another of the
    caller's choice would have written it onto that user. Refused, nothing stored."""
    from sqlalchemy import func, select

    from models import OutboxEmail, User

    api = world.api
    ours = _new_email()
    if attempt == "their number, our email":
        identity = {"personalIdentityNumber": OTHER_PIN, "email": ours}
    else:
        identity = {"email": world.other_firm.admin_email, "personalIdentityNumber": new_pin()}
    async with api.runtime.database.sessions() as session:
        before = {u.id: (u.email, u.personal_identity_digest, u.password_hash) for u in await session.scalars(
            select(User).where(User.email_normalized.in_([world.other_firm.admin_email.lower(), ours])
                               | (User.id == ids.decode(world.other_bankid_user_id)[1])))}
    body = await api.gql(mutation_document("inviteUser"), {"input": {
        "companyId": world.company_id, "name": "Someone", "role": REP, "licenseType": "NAMED", **identity}},
        token=world.tokens[caller])
    [error] = body["data"]["inviteUser"]["userErrors"]
    assert error["code"] == "IDENTITY_CONFLICT"
    assert OTHER_PIN not in error["message"] and world.other_firm.admin_email not in error["message"]
    async with api.runtime.database.sessions() as session:
        after = {u.id: (u.email, u.personal_identity_digest, u.password_hash) for u in await session.scalars(
            select(User).where(User.id.in_(list(before))))}
        mailed = await session.scalar(select(func.count()).select_from(OutboxEmail)
                                      .where(OutboxEmail.to_address == ours))
    assert after == before and mailed == 0


# ------------------------------------------------------------------ the role ceiling, pair by pair

GRANTERS = [FA, FV, ADM, ACC, APP, REP, VENDOR]
# Which roles each may grant: all for those who hold every company right, the roles without
# the settings, seats and billing rights for FIRM_ADVISOR, none for those who may not manage
# members at all.
MAY_GRANT = {FA: set(MEMBER_ROLES), FV: {ACC, APP, REP}, ADM: set(MEMBER_ROLES), ACC: set(), APP: set(),
             REP: set(), VENDOR: set(MEMBER_ROLES)}


@pytest.mark.parametrize("way", ["invite", "raise", "revoke"])
@pytest.mark.parametrize("granted", MEMBER_ROLES)
@pytest.mark.parametrize("granter", GRANTERS)
async def test_the_role_ceiling(world: World, granter: str, granted: str, way: str) -> None:
    """Granting a role, raising a membership to it, and acting on a membership that holds it
    (here revokeAccountantAccess, which then refuses any but an ACCOUNTANT's: INVALID_INPUT)."""
    api = world.api
    if way == "invite":
        name, target_field = "inviteUser", "companyId"
        input = {"companyId": world.company_id, "name": "Invitee", "email": _new_email(), "role": granted,
                 "licenseType": "NAMED"}
    elif way == "raise":
        name, target_field = "updateMembership", "membershipId"
        input = {"membershipId": await _fresh_membership(world), "role": granted}
    else:
        name, target_field = "revokeAccountantAccess", "membershipId"
        _, membership = await _member(api, world.firm, world.company_id, granted, "NAMED")
        input = {"membershipId": membership["id"]}
    body = await api.gql(mutation_document(name), {"input": input}, token=world.tokens[granter])
    allowed = granted in MAY_GRANT[granter]
    assert mutation_verdict(body, name, target_field) is allowed, body
    if allowed:
        refused = [] if way != "revoke" or granted == ACC else ["INVALID_INPUT"]
        assert [e["code"] for e in body["data"][name]["userErrors"]] == refused, body


async def test_firm_staff_gain_no_company_rights_by_inviting_themselves(world: World) -> None:
    api = world.api
    advisor_email = unique("self") + "@staff.example"
    await api.mutate("addFirmStaff", {"firmId": world.firm.id, "name": "Advisor", "email": advisor_email,
                                      "role": FV}, "firmMember { id }", token=await api.vendor())
    advisor = await api.token(advisor_email)
    seats = {"subscriptionId": world.subscription_id, "licenseType": "NAMED", "seats": 450, "dryRun": True}
    assert not mutation_verdict(await api.gql(mutation_document("changeSeats"), {"input": seats}, token=advisor),
                                "changeSeats", "subscriptionId")
    body = await api.gql(mutation_document("inviteUser"), {"input": {
        "companyId": world.company_id, "name": "Me", "email": advisor_email, "role": ADM, "licenseType": "NAMED"}},
        token=advisor)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for name, input, target_field in (
        ("changeSeats", seats, "subscriptionId"),
        ("updateBillingDetails", {"ownerId": world.agreement_id, "billingContactName": "Me",
                                  "billingEmail": "me@x.example", "invoiceAddress": ADDRESS}, "ownerId"),
        ("updateCompany", {"companyId": world.company_id, "name": unique("Mine ")}, "companyId"),
    ):
        body = await api.gql(mutation_document(name), {"input": input}, token=await api.token(advisor_email))
        assert not mutation_verdict(body, name, target_field), f"{name}: {body}"


# ------------------------------------------------------------------ R21 on every path

async def _last_administrator(w: World, how: str) -> dict[str, Any]:
    """A fresh company of the world's agreement whose only administrator the input names."""
    company_id = await w.api.company(w.firm, w.agreement_id)
    if how == "client user":
        assigned = await w.api.mutate("assignClientUser", {
            "firmId": w.firm.id, "name": "Client Admin", "email": _new_email(), "companyIds": [company_id]},
            "clientUser { id }", token=w.firm.admin)
        members = await w.api.ok("query($id: ID!) { company(id: $id) { members { edges { node { id } } } } }",
                                 {"id": company_id}, token=w.firm.admin)
        [edge] = members["company"]["members"]["edges"]
        await w.api.mutate("updateMembership", {"membershipId": edge["node"]["id"], "role": ADM},
                           "membership { id }", token=w.firm.admin)
        return {"clientUserId": assigned["clientUser"]["id"], "companyId": company_id}
    invited = await w.api.invite(w.firm.admin, company_id, email=_new_email(), role=ADM)
    membership_id = invited["membership"]["id"]
    return {"membershipId": membership_id, **({"role": REP} if how == "downgrade" else {})}


R21_PATHS = {"deactivate": "deactivateMembership", "downgrade": "updateMembership",
             "client user": "removeClientUserCompany"}


@pytest.mark.parametrize("caller", [FA, VENDOR])
@pytest.mark.parametrize("how", list(R21_PATHS))
async def test_no_path_removes_a_companys_last_administrator(world: World, how: str, caller: str) -> None:
    name = R21_PATHS[how]
    body = await world.api.gql(mutation_document(name), {"input": await _last_administrator(world, how)},
                               token=world.tokens[caller])
    assert [e["code"] for e in body["data"][name]["userErrors"]] == ["LAST_ADMINISTRATOR"], body
