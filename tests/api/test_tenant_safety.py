"""What an attacker's review found, each pinned through HTTP on PostgreSQL: identities that
stay their owner's, R21 on client-user removal, a viewer with a deactivated membership,
and reseller prices that a firm's clients never see."""

from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select

from models import AuditEvent, User
from models import ids as global_ids
from tests.api.client import Api, Firm, new_pin, unique
from tests.api.mail import MailServer
from tests.api.test_client_users import assign, firm_with_clients

MEMBERSHIP_ROLE = "membership { id role user { id email } }"


async def company_with_seats(api: Api, named: int = 5) -> tuple[Firm, str, str]:
    firm = await api.firm(reseller=True)
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    await api.subscription(firm, agreement_id, named=named)
    return firm, agreement_id, company_id


# ------------------------------------------------------------------ identity


async def test_inviting_by_email_reuses_the_user_unchanged_and_mails_only_the_stored_address(
        api: Api, mail: MailServer) -> None:
    firm_a = await api.firm()
    a_agreement, a_company = await api.agreement(firm_a)
    assert a_company is not None
    await api.subscription(firm_a, a_agreement, named=5)
    email = unique("Person") + "@Example.com"
    first = await api.invite(firm_a.admin, a_company, email=email)
    user_id = first["membership"]["user"]["id"]

    firm_b = await api.firm()
    b_agreement, b_company = await api.agreement(firm_b)
    assert b_company is not None
    await api.subscription(firm_b, b_agreement, named=5)
    payload = await api.mutate("inviteUser", {"companyId": b_company, "name": "Another Name", "email": email.upper(),
                                              "role": "REPORTER", "licenseType": "NAMED"},
                               "membership { user { id name email } } welcomeEmailQueued", token=firm_b.admin)
    assert payload["membership"]["user"]["id"] == user_id
    assert payload["membership"]["user"]["name"] == "Invited Person"  # not renamed by the second firm
    await mail.deliver(api.runtime)
    assert {r for _, rcpt, _ in mail.recorder.messages for r in rcpt} >= {email.lower()}


async def test_a_bankid_only_user_named_by_number_alone_is_reused_and_mailed_nothing(
        api: Api, mail: MailServer) -> None:
    firm_a, _, company_a = await company_with_seats(api)
    pin = new_pin()
    first = await api.invite(firm_a.admin, company_a, personalIdentityNumber=pin)
    firm_b, _, company_b = await company_with_seats(api)
    again = await api.invite(firm_b.admin, company_b, personalIdentityNumber=pin)
    assert again["membership"]["user"]["id"] == first["membership"]["user"]["id"]
    assert again["welcomeEmailQueued"] is False and again["membership"]["user"]["email"] is None


async def test_an_identity_conflict_stores_nothing(api: Api) -> None:
    firm, _, company_id = await company_with_seats(api)
    pin = new_pin()
    bankid = await api.invite(firm.admin, company_id, personalIdentityNumber=pin)
    email = unique("victim") + "@x.example"
    await api.invite(firm.admin, company_id, email=email)
    # Both exist, as two users: naming them together is a conflict too.
    payload = await api.invite(firm.admin, company_id, email=email,
                               personalIdentityNumber=pin, expect_errors=True)
    assert [e["code"] for e in payload["userErrors"]] == ["IDENTITY_CONFLICT"]
    async with api.runtime.database.sessions() as session:
        user = await session.get_one(User, global_ids.decode_as(bankid["membership"]["user"]["id"], "User"))
    assert user.email is None


async def test_the_vendor_corrects_an_identity_and_old_links_stop_working(api: Api, mail: MailServer) -> None:
    firm, _, company_id = await company_with_seats(api)
    wrong = unique("wrong") + "@x.example"
    invited = await api.invite(firm.admin, company_id, email=wrong)
    link = await mail.link_to(api.runtime, wrong)
    user_id = invited["membership"]["user"]["id"]
    right = unique("right") + "@x.example"
    pin = new_pin()
    fixed = await api.mutate("correctUserIdentity", {"userId": user_id, "email": right,
                                                     "personalIdentityNumber": pin},
                             "user { email hasPersonalIdentityNumber }", token=await api.vendor())
    assert fixed["user"] == {"email": right, "hasPersonalIdentityNumber": True}
    assert (await api.http.get(link)).status_code == 404
    async with api.runtime.database.sessions() as session:
        event = await session.scalar(select(AuditEvent).where(AuditEvent.subject_id == user_id,
                                                              AuditEvent.action == "user.identity_corrected"))
    assert event is not None and pin not in (event.after or "") and right in (event.after or "")
    # Another user's identity cannot be taken over this way either.
    other = await api.invite(firm.admin, company_id, email=unique("other") + "@x.example")
    taken = await api.mutate("correctUserIdentity", {"userId": other["membership"]["user"]["id"], "email": right},
                             "user { email }", token=await api.vendor(), expect_errors=True)
    assert [e["code"] for e in taken["userErrors"]] == ["IDENTITY_CONFLICT"]


# ------------------------------------------------------------------ R21 on every path


async def test_removing_a_client_user_who_is_the_last_administrator_is_refused(api: Api) -> None:
    firm, _, [company_id] = await firm_with_clients(api, client_user_seats=2, companies=1)
    assigned = await assign(api, firm, [company_id])
    members = await api.ok("query($id: ID!) { company(id: $id) { members { edges { node { id } } } } }",
                           {"id": company_id}, token=firm.admin)
    [membership_id] = [edge["node"]["id"] for edge in members["company"]["members"]["edges"]]
    await api.mutate("updateMembership", {"membershipId": membership_id, "role": "ADMINISTRATOR"}, "membership { id }",
                     token=firm.admin)
    refused = await api.mutate("removeClientUserCompany", {"clientUserId": assigned["clientUser"]["id"],
                                                           "companyId": company_id},
                               "clientUser { companies { id } }", token=firm.admin, expect_errors=True)
    assert [e["code"] for e in refused["userErrors"]] == ["LAST_ADMINISTRATOR"]
    # With another administrator it may go.
    await api.invite(firm.admin, company_id, email=unique("admin2") + "@x.example", role="ADMINISTRATOR",
                     license_type="CONCURRENT")
    done = await api.mutate("removeClientUserCompany", {"clientUserId": assigned["clientUser"]["id"],
                                                        "companyId": company_id},
                            "clientUser { companies { id } }", token=firm.admin)
    assert done["clientUser"]["companies"] == []


async def test_demoting_the_last_administrator_is_refused(api: Api) -> None:
    firm, _, company_id = await company_with_seats(api)
    admin = await api.invite(firm.admin, company_id, email=unique("only") + "@x.example",
                             role="ADMINISTRATOR")
    refused = await api.mutate("updateMembership", {"membershipId": admin["membership"]["id"], "role": "REPORTER"},
                               "membership { role }", token=firm.admin, expect_errors=True)
    assert [e["code"] for e in refused["userErrors"]] == ["LAST_ADMINISTRATOR"]


# ------------------------------------------------------------------ the viewer


async def test_viewer_memberships_leave_out_deactivated_ones(api: Api) -> None:
    firm, agreement_id, company_id = await company_with_seats(api)
    other_company = await api.company(firm, agreement_id)
    email = unique("two") + "@x.example"
    gone = await api.invite(firm.admin, company_id, email=email)
    await api.invite(firm.admin, other_company, email=email)
    await api.mutate("deactivateMembership", {"membershipId": gone["membership"]["id"]}, "membership { id }",
                     token=firm.admin)
    token = await api.token(email)
    body = await api.gql("{ viewer { memberships { totalCount edges { node { status company { id name } } } } "
                         "user { memberships { edges { node { company { id } } } } } } }", token=token)
    assert "errors" not in body, body
    edges = body["data"]["viewer"]["memberships"]["edges"]
    assert [e["node"]["company"]["id"] for e in edges] == [other_company]
    assert body["data"]["viewer"]["memberships"]["totalCount"] == 1


# ------------------------------------------------------------------ reseller prices stay the firm's


PREVIEW = "preview { amountDueNow { amount basis } } order { id total { amount basis } lines { unitPrice { amount basis } amount { amount basis } } }"  # noqa: E501
ORDER = "query($id: ID!) { node(id: $id) { ... on Order { total { amount basis } lines { unitPrice { amount basis } } } } }"  # noqa: E501


async def test_company_members_of_a_firm_agreement_see_list_prices_only(api: Api) -> None:
    """A 12.5 % discount on a 31-day period: the reseller price and the list price differ by
    half cents, so a member could work the discount out from any reseller figure."""
    firm = await api.firm(reseller=True)
    await api.mutate("updateFirm", {"firmId": firm.id, "resellerDiscountPercent": "12.5"}, "firm { id }",
                     token=await api.vendor())
    agreement_id, company_id = await api.agreement(firm, billing_mode="FIRM")
    assert company_id is not None
    subscription_id = await api.subscription(firm, agreement_id, named=3)
    admin_email = unique("clientadmin") + "@x.example"
    await api.invite(firm.admin, company_id, email=admin_email, role="ADMINISTRATOR")
    member = await api.token(admin_email)

    as_member = await api.mutate("changeSeats", {"subscriptionId": subscription_id, "licenseType": "NAMED",
                                                 "seats": 5}, PREVIEW, token=member)
    staff_order = await api.ok(ORDER, {"id": as_member["order"]["id"]}, token=firm.admin)
    reseller_total = Decimal(staff_order["node"]["total"]["amount"])
    list_total = Decimal(as_member["order"]["total"]["amount"])
    assert staff_order["node"]["total"]["basis"] == "RESELLER"
    assert as_member["order"]["total"]["basis"] == "LIST" and as_member["preview"]["amountDueNow"]["basis"] == "LIST"
    assert Decimal(as_member["preview"]["amountDueNow"]["amount"]) == list_total
    assert {line["unitPrice"]["basis"] for line in as_member["order"]["lines"]} == {"LIST"}
    # The list amount is the reseller amount before its discount (to the cent, rounded on its own).
    assert list_total > reseller_total
    assert (list_total * Decimal("0.875")).quantize(Decimal("0.01"), ROUND_HALF_UP) - reseller_total in (
        Decimal("-0.01"), Decimal("0.00"), Decimal("0.01"))

    # Staff see the reseller price and say so; the member reads the same order at list price.
    dry = await api.mutate("changeSeats", {"subscriptionId": subscription_id, "licenseType": "NAMED", "seats": 6,
                                           "dryRun": True}, PREVIEW, token=firm.admin)
    assert dry["preview"]["amountDueNow"]["basis"] == "RESELLER"
    member_order = await api.ok(ORDER, {"id": as_member["order"]["id"]}, token=member)
    assert member_order["node"]["total"] == {"amount": str(list_total), "basis": "LIST"}

    # And nothing of the firm's terms.
    terms = await api.gql("query($id: ID!) { company(id: $id) { firm { name resellerDiscountPercent } } }",
                          {"id": company_id}, token=member)
    assert [e["extensions"]["code"] for e in terms["errors"]] == ["FORBIDDEN"]
    name_only = await api.ok("query($id: ID!) { company(id: $id) { firm { name } } }",
                             {"id": company_id}, token=member)
    assert name_only["company"]["firm"]["name"]
