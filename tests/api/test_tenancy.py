"""Scope, role and tenancy for what exists so far (DESIGN.md section 3)."""

from tests.api.client import Api, Firm, unique

COMPANY = "query($id: ID!) { company(id: $id) { id name members { totalCount edges { node { user { email } } } } } }"


async def member_token(api: Api, firm: Firm, company_id: str, role: str, license_type: str = "NAMED") -> str:
    email = unique(role.lower()) + "@member.example"
    await api.invite(firm.admin, company_id, email=email, role=role, license_type=license_type)
    return await api.token(email)


async def setup(api: Api) -> tuple[Firm, str, str]:
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    await api.subscription(firm, agreement_id, named=20)
    return firm, agreement_id, company_id


async def test_another_firm_sees_nothing_and_changes_nothing(api: Api) -> None:
    firm, agreement_id, company_id = await setup(api)
    other = await api.firm()
    for query, key, object_id in (
        ("query($id: ID!) { firm(id: $id) { id } }", "firm", firm.id),
        ("query($id: ID!) { agreement(id: $id) { id } }", "agreement", agreement_id),
        (COMPANY, "company", company_id),
        ("query($id: ID!) { node(id: $id) { id } }", "node", company_id),
    ):
        assert (await api.ok(query, {"id": object_id}, token=other.admin))[key] is None
    payload = await api.mutate("updateCompany", {"companyId": company_id, "name": "Hijacked"}, "company { id }",
                               token=other.admin, expect_errors=True)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("NOT_FOUND", ["input", "companyId"])]
    invite = await api.invite(other.admin, company_id, email=unique("x") + "@x.example", expect_errors=True)
    assert [e["code"] for e in invite["userErrors"]] == ["NOT_FOUND"]


async def test_a_firms_client_credentials_never_reach_another_firm(api: Api) -> None:
    from auth.clients import register_client
    from models import ids

    firm, _, company_id = await setup(api)
    other = await api.firm()
    async with api.runtime.database.sessions.begin() as session:
        client = await register_client(session, name="dashboard", scopes=["companies:read", "companies:write"],
                                       firm_id=ids.decode(other.id)[1])
    token = await api.token(scopes=["companies:read", "companies:write"], client_id=client.client_id)
    assert (await api.ok(COMPANY.replace(" members { totalCount edges { node { user { email } } } }", ""),
                         {"id": company_id}, token=token))["company"] is None
    own_agreement, own_company = await api.agreement(other)
    data = await api.ok("query($id: ID!) { company(id: $id) { name } }", {"id": own_company}, token=token)
    assert data["company"]["name"].startswith("Company")
    await api.mutate("updateCompany", {"companyId": own_company, "name": "Renamed by dashboard"},
                     "company { name }", token=token)


async def test_administrator_renames_the_company_reporter_may_not(api: Api) -> None:
    firm, _, company_id = await setup(api)
    admin = await member_token(api, firm, company_id, "ADMINISTRATOR")
    reporter = await member_token(api, firm, company_id, "REPORTER")
    await api.mutate("updateCompany", {"companyId": company_id, "name": "By admin"}, "company { name }", token=admin)
    body = await api.gql("mutation($input: UpdateCompanyInput!) { updateCompany(input: $input) { company { id } } }",
                         {"input": {"companyId": company_id, "name": "By reporter"}}, token=reporter)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    data = await api.ok("query($id: ID!) { company(id: $id) { name } }", {"id": company_id}, token=admin)
    assert data["company"]["name"] == "By admin"


async def test_reporter_sees_its_own_membership_only(api: Api) -> None:
    firm, _, company_id = await setup(api)
    await member_token(api, firm, company_id, "ADMINISTRATOR")
    reporter = await member_token(api, firm, company_id, "REPORTER")
    approver = await member_token(api, firm, company_id, "APPROVER")
    assert (await api.ok(COMPANY, {"id": company_id}, token=reporter))["company"]["members"]["totalCount"] == 1
    assert (await api.ok(COMPANY, {"id": company_id}, token=approver))["company"]["members"]["totalCount"] == 3


async def test_only_firm_admins_create_agreements_and_companies(api: Api) -> None:
    firm, agreement_id, company_id = await setup(api)
    vendor = await api.vendor()
    advisor_email = unique("advisor") + "@firm.example"
    await api.mutate("addFirmStaff", {"firmId": firm.id, "name": "Adv", "email": advisor_email,
                                      "role": "FIRM_ADVISOR"}, "firmMember { id }", token=vendor)
    advisor = await api.token(advisor_email)
    admin = await member_token(api, firm, company_id, "ADMINISTRATOR")
    for token in (advisor, admin):
        body = await api.gql("mutation($input: CreateCompanyInput!) { createCompany(input: $input) { company { id } } "
                             "}",
                             {"input": {"agreementId": agreement_id, "company": {"name": "X", "country": "SE"}}},
                             token=token)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # the advisor manages members: invites are allowed
    await api.invite(advisor, company_id, email=unique("by-advisor") + "@x.example")


async def test_vendor_only_firm_settings(api: Api) -> None:
    firm = await api.firm()
    body = await api.gql("mutation($input: UpdateFirmInput!) { updateFirm(input: $input) { firm { id } } }",
                         {"input": {"firmId": firm.id, "isCertified": True}}, token=firm.admin)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    renamed = await api.mutate("updateFirm", {"firmId": firm.id, "name": "Renamed firm"}, "firm { name isCertified }",
                               token=firm.admin)
    assert renamed["firm"] == {"name": "Renamed firm", "isCertified": False}
    body = await api.gql("mutation($input: CreateFirmInput!) { createFirm(input: $input) { firm { id } } }",
                         {"input": {"name": "Self-made", "country": "SE", "currency": "SEK"}}, token=firm.admin)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_company_members_read_their_firm_and_agreement(api: Api) -> None:
    firm, agreement_id, company_id = await setup(api)
    reporter = await member_token(api, firm, company_id, "REPORTER")
    data = await api.ok("query($id: ID!) { company(id: $id) { firm { id } agreement { id subscription { id } } } }",
                        {"id": company_id}, token=reporter)
    assert data["company"]["firm"]["id"] == firm.id
    assert data["company"]["agreement"]["id"] == agreement_id
    assert data["company"]["agreement"]["subscription"] is None  # REPORTER may not read the subscription


async def test_firm_changes_are_in_the_firms_audit_log(api: Api) -> None:
    firm = await api.firm()
    await api.mutate("updateFirm", {"firmId": firm.id, "name": "Audited firm"}, "firm { id }", token=firm.admin)
    data = await api.ok("query($id: ID!) { firm(id: $id) { auditLog { edges { node { action subjectId before after "
                        "actor { email } } } } } }", {"id": firm.id}, token=firm.admin)
    events = [edge["node"] for edge in data["firm"]["auditLog"]["edges"]]
    renamed = next(e for e in events if e["action"] == "firm.updated")
    assert renamed["subjectId"] == firm.id and "Audited firm" in renamed["after"]
    assert renamed["actor"]["email"] == firm.admin_email
    assert {"firm.created", "firm.staff_added"} <= {e["action"] for e in events}
