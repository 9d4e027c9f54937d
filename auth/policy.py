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
    # The firm's commercial terms: its discount, reseller agreement, own invoices and licence.
    READ_FIRM_TERMS = enum.auto()
    # Only the vendor: reseller agreements, certification, discounts, the catalog, new firms.
    PLATFORM = enum.auto()
    # Any role, but only with a CONCURRENT membership of the company (checked below).
    OWN_SESSION = enum.auto()
    # A signed-in user acting on their own account (e.g. their email); never a client token.
    OWN_ACCOUNT = enum.auto()
    # The firm's webhook endpoints and their deliveries (R71).
    MANAGE_WEBHOOKS = enum.auto()


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
    Action.READ_FIRM_TERMS: frozenset({FA, FV}),
    Action.PLATFORM: frozenset(),
    Action.OWN_SESSION: frozenset(),
    Action.OWN_ACCOUNT: frozenset(),
    Action.MANAGE_WEBHOOKS: frozenset({FA}),
}

# Fields whose reading carries a rule of its own, beyond the visibility of their object
# (auth.visibility): who may read them is who may do the Action on the object. A caller who
# may not reads null, an empty list, or (for a field that cannot be null) a FORBIDDEN error.
# Company members learn their firm's name, never its terms: from none of these can a client
# work out the reseller price (prices they see are list prices, see `sees_reseller_prices`).
FIELD_READS: dict[tuple[str, str], Action] = {
    ("Firm", "billingDetails"): Action.BILLING_DETAILS,
    ("Agreement", "billingDetails"): Action.BILLING_DETAILS,
    ("Firm", "resellerDiscountPercent"): Action.READ_FIRM_TERMS,
    ("Firm", "hasResellerAgreement"): Action.READ_FIRM_TERMS,
    ("Firm", "masterSubscription"): Action.READ_FIRM_TERMS,
    ("Firm", "invoices"): Action.READ_FIRM_TERMS,
    ("Firm", "upcomingInvoice"): Action.READ_FIRM_TERMS,
    ("Firm", "auditLog"): Action.READ_FIRM_TERMS,
    ("Firm", "staff"): Action.READ_FIRM_STAFF,
    ("Firm", "clientUsers"): Action.MANAGE_CLIENT_USERS,
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
    if action is Action.OWN_ACCOUNT:  # the vendor too needs an account of its own for this
        return principal.user_id is not None
    if principal.is_platform_admin:
        return True
    if action is Action.OWN_SESSION:
        grant = principal.grants.companies.get(where.company_id or -1)
        return grant is not None and grant.license_type is LicenseType.CONCURRENT
    return bool(roles_for(principal, where) & ALLOWED[action])


def authorize(principal: Principal, action: Action, where: Tenancy) -> None:
    if not is_allowed(principal, action, where):
        raise Forbidden(f"not allowed to {action.name.lower().replace('_', ' ')}")


# ----------------------------------------------------------------------------- the role ceiling


def rights_of(role: Role | FirmRole) -> frozenset[Action]:
    """What a role may do: the actions of the table above that list it."""
    return frozenset(action for action, roles in ALLOWED.items() if role in roles)


def may_grant(principal: Principal, role: Role | FirmRole, where: Tenancy) -> bool:
    """The role ceiling: a caller may grant a role, raise a membership to it, or act on a
    membership that holds it, only when the caller itself holds every right of that role
    there. So nobody grants more than it holds, and firm staff gain no company rights by
    inviting themselves (a FIRM_ADVISOR may not make anyone ADMINISTRATOR)."""
    return all(is_allowed(principal, action, where) for action in rights_of(role))


def authorize_grant(principal: Principal, role: Role | FirmRole, where: Tenancy) -> None:
    if not may_grant(principal, role, where):
        raise Forbidden(f"not allowed to grant or manage the role {role.value}: it has rights the caller lacks")


def sees_reseller_prices(principal: Principal, firm_id: int) -> bool:
    """The reseller price (and so the discount) is the firm's and the vendor's to know:
    its staff see it, its clients' members see list prices."""
    return is_allowed(principal, Action.READ_FIRM_TERMS, Tenancy(firm_id=firm_id))


def tenancy_of(obj: object) -> Tenancy:
    """Where a loaded model object lives, for the role checks above."""
    from models import Agreement, AgreementTransfer, Company, Firm, Subscription, User

    if isinstance(obj, User):
        return Tenancy(firm_id=0)  # global: no firm role reaches a user itself, only the vendor
    if isinstance(obj, AgreementTransfer):
        return Tenancy(firm_id=obj.from_firm_id, agreement_id=obj.agreement_id)  # the offering side
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
