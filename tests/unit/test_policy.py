"""The role table of DESIGN.md section 3, cell by cell."""

import pytest

from auth.policy import Action, Forbidden, Tenancy, authorize, is_allowed
from auth.principal import CompanyGrant, Grants, Principal
from models.enums import FirmRole, LicenseType, MembershipStatus, Role

FIRM, AGREEMENT, COMPANY = 1, 10, 100
WHERE = Tenancy(firm_id=FIRM, agreement_id=AGREEMENT, company_id=COMPANY)

# action -> roles allowed, straight from the table
TABLE = {
    Action.READ_COMPANY: {"FIRM_ADMIN", "FIRM_ADVISOR", "ADMINISTRATOR", "ACCOUNTANT", "APPROVER", "REPORTER"},
    Action.UPDATE_COMPANY: {"FIRM_ADMIN", "ADMINISTRATOR"},
    Action.MANAGE_MEMBERS: {"FIRM_ADMIN", "FIRM_ADVISOR", "ADMINISTRATOR"},
    Action.READ_SUBSCRIPTION: {"FIRM_ADMIN", "FIRM_ADVISOR", "ADMINISTRATOR", "ACCOUNTANT"},
    Action.CHANGE_SUBSCRIPTION: {"FIRM_ADMIN", "ADMINISTRATOR"},
    Action.BILLING_DETAILS: {"FIRM_ADMIN", "ADMINISTRATOR"},
    Action.MANAGE_AGREEMENTS: {"FIRM_ADMIN"},
    Action.MANAGE_CLIENT_USERS: {"FIRM_ADMIN"},
}
ROLES = ["FIRM_ADMIN", "FIRM_ADVISOR", "ADMINISTRATOR", "ACCOUNTANT", "APPROVER", "REPORTER"]


def principal_with(
    role: str,
    *,
    status: MembershipStatus = MembershipStatus.ACTIVE,
    license_type: LicenseType = LicenseType.NAMED,
    firm: int = FIRM,
    company: int = COMPANY,
) -> Principal:
    grants = Grants()
    if role.startswith("FIRM_"):
        grants.firm_roles[firm] = FirmRole(role)
    else:
        grants.companies[company] = CompanyGrant(company, AGREEMENT, firm, Role(role), license_type, status)
    return Principal(client_id="c", scopes=frozenset(), user_id=7, grants=grants)


@pytest.mark.parametrize("action", list(TABLE))
@pytest.mark.parametrize("role", ROLES)
def test_every_cell_of_the_role_table(action: Action, role: str) -> None:
    assert is_allowed(principal_with(role), action, WHERE) == (role in TABLE[action])


@pytest.mark.parametrize("role", ROLES)
def test_roles_do_not_cross_to_another_firm_or_company(role: str) -> None:
    elsewhere = Tenancy(firm_id=2, agreement_id=20, company_id=200)
    assert not is_allowed(principal_with(role), Action.READ_COMPANY, elsewhere)
    with pytest.raises(Forbidden):
        authorize(principal_with(role), Action.READ_COMPANY, elsewhere)


def test_agreement_level_actions_use_the_roles_held_in_its_companies() -> None:
    agreement_only = Tenancy(firm_id=FIRM, agreement_id=AGREEMENT)
    assert is_allowed(principal_with("ADMINISTRATOR"), Action.CHANGE_SUBSCRIPTION, agreement_only)
    assert not is_allowed(principal_with("APPROVER"), Action.READ_SUBSCRIPTION, agreement_only)


def test_concurrent_sessions_need_a_concurrent_membership() -> None:
    assert is_allowed(principal_with("REPORTER", license_type=LicenseType.CONCURRENT), Action.OWN_SESSION, WHERE)
    assert not is_allowed(principal_with("ADMINISTRATOR"), Action.OWN_SESSION, WHERE)


def test_platform_admin_passes_role_and_tenancy_checks() -> None:
    vendor = Principal(client_id="v", scopes=frozenset({"platform:admin"}))
    assert is_allowed(vendor, Action.PLATFORM, WHERE)
    assert not is_allowed(principal_with("FIRM_ADMIN"), Action.PLATFORM, WHERE)


def test_client_credentials_act_as_the_owning_firm() -> None:
    integration = Principal(client_id="i", scopes=frozenset(), client_firm_id=FIRM)
    assert is_allowed(integration, Action.MANAGE_AGREEMENTS, WHERE)
    assert not is_allowed(integration, Action.READ_COMPANY, Tenancy(firm_id=2))


def test_every_action_is_its_own_member() -> None:
    # Enum members with equal values alias each other; one did, and sessions checked reads.
    assert len(set(Action)) == len(Action.__members__)
