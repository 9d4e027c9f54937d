"""The one place that decides role and tenancy (DESIGN.md section 3).

`authorize(principal, action, target)` answers "may this caller do this to that object";
`auth.visibility` answers "which rows may this caller read" as SQL filters. Scopes are
checked before execution from the document (schema.scopes), so they are not repeated here.
"""

import enum
from dataclasses import dataclass

from auth.principal import Principal
from models.enums import FirmRole, LicenseType, Role

FA, FV = FirmRole.FIRM_ADMIN, FirmRole.FIRM_ADVISOR
ADM, ACC, APP, REP = Role.ADMINISTRATOR, Role.ACCOUNTANT, Role.APPROVER, Role.REPORTER


class Action(enum.Enum):
    """What a caller does. Values are plain names: roles live in ALLOWED, because enum
    members with equal values would silently become aliases of each other."""

    READ_COMPANY = enum.auto()
    UPDATE_COMPANY = enum.auto()
    MANAGE_MEMBERS = enum.auto()
    READ_SUBSCRIPTION = enum.auto()
    CHANGE_SUBSCRIPTION = enum.auto()
    BILLING_DETAILS = enum.auto()
    MANAGE_AGREEMENTS = enum.auto()
    MANAGE_CLIENT_USERS = enum.auto()
    MANAGE_FIRM = enum.auto()
    READ_FIRM_STAFF = enum.auto()
    # Only the vendor: reseller agreements, certification, discounts, the catalog, new firms.
    PLATFORM = enum.auto()
    # Any role, but only with a CONCURRENT membership of the company (checked below).
    OWN_SESSION = enum.auto()


# The table of section 3: which roles may do what.
ALLOWED: dict[Action, frozenset[Role | FirmRole]] = {
    Action.READ_COMPANY: frozenset({FA, FV, ADM, ACC, APP, REP}),
    Action.UPDATE_COMPANY: frozenset({FA, ADM}),
    Action.MANAGE_MEMBERS: frozenset({FA, FV, ADM}),
    Action.READ_SUBSCRIPTION: frozenset({FA, FV, ADM, ACC}),
    Action.CHANGE_SUBSCRIPTION: frozenset({FA, ADM}),
    Action.BILLING_DETAILS: frozenset({FA, ADM}),
    Action.MANAGE_AGREEMENTS: frozenset({FA}),
    Action.MANAGE_CLIENT_USERS: frozenset({FA}),
    Action.MANAGE_FIRM: frozenset({FA}),
    Action.READ_FIRM_STAFF: frozenset({FA, FV}),
    Action.PLATFORM: frozenset(),
    Action.OWN_SESSION: frozenset(),
}


class Forbidden(Exception):
    """The caller may see the object but not do this to it: a top-level FORBIDDEN error."""


@dataclass(frozen=True)
class Tenancy:
    """Where an object lives: its firm, and its agreement and company when it has them."""

    firm_id: int
    agreement_id: int | None = None
    company_id: int | None = None


def roles_for(principal: Principal, where: Tenancy) -> set[Role | FirmRole]:
    roles: set[Role | FirmRole] = set()
    firm_role = principal.firm_role(where.firm_id)
    if firm_role is not None:
        roles.add(firm_role)
    grants = principal.grants
    if where.company_id is not None:
        grant = grants.companies.get(where.company_id)
        if grant is not None:
            roles.add(grant.role)
    elif where.agreement_id is not None:
        roles |= grants.company_roles_in_agreement(where.agreement_id)
    return roles


def is_allowed(principal: Principal, action: Action, where: Tenancy) -> bool:
    if principal.is_platform_admin:
        return True
    if action is Action.OWN_SESSION:
        grant = principal.grants.companies.get(where.company_id or -1)
        return grant is not None and grant.license_type is LicenseType.CONCURRENT
    return bool(roles_for(principal, where) & ALLOWED[action])


def authorize(principal: Principal, action: Action, where: Tenancy) -> None:
    if not is_allowed(principal, action, where):
        raise Forbidden(f"not allowed to {action.name.lower().replace('_', ' ')}")


def tenancy_of(obj: object) -> Tenancy:
    """Where a loaded model object lives, for the role checks above."""
    from models import Agreement, Company, Firm, Subscription

    if isinstance(obj, Firm):
        return Tenancy(firm_id=obj.id)
    if isinstance(obj, Agreement):
        return Tenancy(firm_id=obj.firm_id, agreement_id=obj.id)
    if isinstance(obj, Company):
        return Tenancy(firm_id=obj.firm_id, agreement_id=obj.agreement_id, company_id=obj.id)
    if isinstance(obj, Subscription):
        return Tenancy(firm_id=obj.firm_id, agreement_id=obj.agreement_id)
    firm_id = getattr(obj, "firm_id", None)
    if not isinstance(firm_id, int):
        raise TypeError(f"no tenancy for {type(obj).__name__}")
    # Memberships, sessions and the like live in one company of the firm.
    return Tenancy(firm_id=firm_id, company_id=getattr(obj, "company_id", None))
