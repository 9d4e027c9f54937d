"""Memberships after the invitation: accountant access and its end, changes, deactivation,
reactivation and a renewed welcome email (R13, R18, R20, R21, R22, R28, R52).

Every function here locks the membership's company row first (the mutation has already
locked the membership itself), so that two changes to one company's administrators run
one after the other and R21 counts what the other committed. Every change that takes a
NAMED seat goes through `licensing.seats.claim_named_seat`, which locks the agreement
row (R28)."""

import enum
from datetime import date
from typing import Any

from sqlalchemy import func, select, update

from licensing import memberships as rules
from licensing import seats
from licensing.errors import RuleViolation
from licensing.validation import optional_text
from models import Company, LicenseSession, Membership, User
from models import ids as global_ids
from models.enums import LicenseType, MembershipStatus, PayType, Role
from resolvers import users
from resolvers.base import UnitOfWork, changes
from resolvers.invitations import invitation_expiry_of
from resolvers.periods import advance_agreements

# Column -> the name the API (and so the audit log) uses.
_API_NAMES = {
    "role": "role",
    "license_type": "licenseType",
    "employee_number": "employeeNumber",
    "pay_type": "payType",
    "approver_id": "approver",
    "status": "status",
    "invitation_expires_at": "invitationExpiresAt",
    "deactivated_at": "deactivatedAt",
    "access_ends_at": "accessEndsOn",
}


async def grant_accountant_access(
    uow: UnitOfWork, company: Company, *, name: str, email: str, until: date | None = None
) -> tuple[Membership, bool]:
    """R22: an INVITED ACCOUNTANT membership on a NAMED seat, made like any invitation. With
    `until` (R52) the access ends by itself at 00:00 UTC of that day: from then on it grants
    nothing and its seat is free, with no job to run."""
    ends_at = None if until is None else rules.access_end(until, uow.runtime.today(), ["input", "until"])
    try:
        return await users.invite_user(
            uow, company, name=name, email=email, personal_identity_number=None, role=Role.ACCOUNTANT,
            license_type=LicenseType.NAMED, action="membership.accountant_granted", access_ends_at=ends_at,
        )
    except RuleViolation as violation:
        # grantAccountantAccess has no licenseType field: the seat belongs to the company's agreement.
        if violation.field == ["input", "licenseType"]:
            violation.field = ["input", "companyId"]
        raise


async def update_membership(
    uow: UnitOfWork,
    membership: Membership,
    *,
    role: Role | None,
    license_type: LicenseType | None,
    employee_number: str | None,
    pay_type: PayType | None,
    approver_id: str | None,
) -> Membership:
    """None leaves a value as it is; a blank employee number or approver clears it."""
    company = await _lock_company(uow, membership)
    now = uow.runtime.now()
    role_was = membership.role
    new_role = role if role is not None else membership.role
    new_license = license_type if license_type is not None else membership.license_type
    if license_type is not None:
        rules.check_license_type_change(membership.license_type, license_type, ["input", "licenseType"])
    rules.check_keeps_its_end(membership.role, new_role, membership.access_ends_at, now, ["input", "role"])
    rules.check_accountant_is_named(new_role, new_license,
                                    ["input", "licenseType" if license_type is not None else "role"])
    await change_access(uow, membership, ["input", "role"], role=new_role)
    values: dict[str, Any] = {"license_type": new_license}
    if employee_number is not None:
        values["employee_number"] = optional_text(employee_number, ["input", "employeeNumber"], "Employee number")
    if pay_type is not None:
        values["pay_type"] = pay_type
    if approver_id is not None:
        values["approver_id"] = (
            None if not approver_id.strip()
            else await users._approver(uow, company, approver_id, ["input", "approverId"])
        )
    if new_license is not membership.license_type and rules.needs_named_seat(
        new_license, membership.status, membership.invitation_expires_at, membership.access_ends_at, now
    ):
        await advance_agreements(uow, {company.agreement_id})
        await seats.claim_named_seat(uow.session, company.agreement_id, membership.user_id, now,
                                     ["input", "licenseType"])
    role_before, role_after = ({"role": role_was}, {"role": new_role}) if new_role is not role_was else ({}, {})
    before, after = changes(membership, values)
    before, after = {**role_before, **before}, {**role_after, **after}
    if after:
        _audit(uow, "membership.updated", membership, company, "updated", before, after)
    return membership


async def deactivate_membership(uow: UnitOfWork, membership: Membership) -> Membership:
    """R21 keeps the last administrator; the NAMED seat frees at once (R13 counts only
    INVITED and ACTIVE memberships), and the user's live concurrent sessions in the
    company end. Deactivating a deactivated (or ended, R52) membership changes nothing."""
    company = await _lock_company(uow, membership)
    if not rules.grants_access(membership.status, membership.access_ends_at, uow.runtime.now()):
        return membership
    before, after = await change_access(uow, membership, ["input", "membershipId"], end=End.DEACTIVATE)
    _audit(uow, "membership.deactivated", membership, company, "deactivated", before, after)
    return membership


async def revoke_accountant_access(uow: UnitOfWork, membership: Membership) -> Membership:
    """R52: an accountant's access ends at once, through the one path that ends access
    (`change_access`, so R21 and the end of live sessions hold as for a deactivation); its
    seat frees at once and a pending end is dropped. Only ACCOUNTANT memberships; revoking
    one that has ended already changes nothing."""
    company = await _lock_company(uow, membership)
    field = ["input", "membershipId"]
    rules.check_is_accountant(membership.role, field)
    if not rules.grants_access(membership.status, membership.access_ends_at, uow.runtime.now()):
        return membership
    before, after = await change_access(uow, membership, field, end=End.DEACTIVATE)
    _audit(uow, "membership.accountant_revoked", membership, company, "revoked (accountant access)", before, after)
    return membership


async def reactivate_membership(uow: UnitOfWork, membership: Membership) -> Membership:
    """Back to ACTIVE when the user had accepted, else INVITED with a fresh invitation;
    a NAMED membership needs a seat as an invitation does."""
    company = await _lock_company(uow, membership)
    field = ["input", "membershipId"]
    now = uow.runtime.now()
    was = rules.effective_status(membership.status, membership.access_ends_at, now)
    rules.check_can_reactivate(was, field)
    status = rules.reactivated_status(membership.activated_at)
    if membership.license_type is LicenseType.NAMED:
        await advance_agreements(uow, {company.agreement_id})
        await seats.claim_named_seat(uow.session, company.agreement_id, membership.user_id, now, field)
    # An ended access (R52) comes back without its end: whoever reactivates gives access anew.
    values: dict[str, Any] = {"status": status, "deactivated_at": None, "access_ends_at": None}
    if status is MembershipStatus.INVITED:
        user = await uow.session.get_one(User, membership.user_id)
        values["invitation_expires_at"] = invitation_expiry_of(uow, user)
    before, after = changes(membership, values)
    before, after = {**before, "status": was}, {**after, "status": status}
    _audit(uow, "membership.reactivated", membership, company, "reactivated", before, after)
    return membership


async def resend_welcome_email(uow: UnitOfWork, membership: Membership) -> Membership:
    """R18/R20: a new welcome email through the outbox, and a renewed invitation; a lapsed
    invitation then holds its seat again, so it needs a free one. A user without an email
    gets no email: the invitation is renewed to wait for their BankID sign-in (R51)."""
    company = await _lock_company(uow, membership)
    field = ["input", "membershipId"]
    user = await uow.session.get_one(User, membership.user_id)
    now = uow.runtime.now()
    rules.check_can_resend_invitation(rules.effective_status(membership.status, membership.access_ends_at, now),
                                      field)
    if membership.license_type is LicenseType.NAMED and not rules.holds_seat(
        membership.status, membership.invitation_expires_at, membership.access_ends_at, now
    ):
        await advance_agreements(uow, {company.agreement_id})
        await seats.claim_named_seat(uow.session, company.agreement_id, membership.user_id, now, field)
    lapses = rules.invitation_lapse(invitation_expiry_of(uow, user), membership.access_ends_at)
    before, after = changes(membership, {"invitation_expires_at": lapses})
    if not rules.invitation_lapses(user.email):
        if after:  # a lapsed one (or one made before R51) waits again; a waiting one is left as it is
            _audit(uow, "membership.invitation_renewed", membership, company, "invitation renewed", before, after)
        return membership
    await users.queue_welcome_email(uow, user, company, membership)
    _audit(uow, "membership.welcome_email_resent", membership, company, "sent a new welcome email", before, after)
    return membership


# ----------------------------------------------------------------- helpers


async def _lock_company(uow: UnitOfWork, membership: Membership) -> Company:
    """The membership's company, locked and read fresh (its agreement may just have changed)."""
    stmt = (
        select(Company).where(Company.id == membership.company_id).with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await uow.session.scalars(stmt)).one()


class End(enum.Enum):
    DEACTIVATE = enum.auto()  # kept, DEACTIVATED: it grants nothing, and may be reactivated
    REMOVE = enum.auto()  # deleted (a client user's membership goes with its company link)


async def change_access(uow: UnitOfWork, membership: Membership, field: list[str], *, role: Role | None = None,
                        end: End | None = None, whole_company: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """The one way a membership loses access or its administrator role: every path that
    removes, deactivates or downgrades one comes here, so R21 holds on all of them. Ending
    access also ends the user's live concurrent sessions in the company. `whole_company`
    (archiving it) skips R21, since every access ends with it. Returns (before, after) of
    the status for the audit; the caller writes the event. Deactivating drops a pending end
    (R52): access has ended, and a reactivation gives it back without one."""
    await _lock_company(uow, membership)
    downgraded = role is not None and role is not Role.ADMINISTRATOR
    if (end is not None or downgraded) and not whole_company:
        await _check_keeps_an_administrator(uow, membership, field)
    if role is not None:
        membership.role = role
    if end is None:
        return {}, {}
    now = uow.runtime.now()
    await uow.session.execute(
        update(LicenseSession)
        .where(LicenseSession.company_id == membership.company_id, LicenseSession.user_id == membership.user_id,
               LicenseSession.ended_at.is_(None), LicenseSession.expires_at > now)
        .values(ended_at=now)
    )
    if end is End.REMOVE:
        before = {"status": membership.status.value}
        await uow.session.delete(membership)
        await uow.session.flush()
        return before, {"status": None}
    return changes(membership, {"status": MembershipStatus.DEACTIVATED, "deactivated_at": now, "access_ends_at": None})


async def _check_keeps_an_administrator(uow: UnitOfWork, membership: Membership, field: list[str]) -> None:
    """R21, for a membership about to stop being an administrator. Memberships count by the
    status they read now (R52: an ended one is DEACTIVATED)."""
    now = uow.runtime.now()
    status = rules.effective_status(membership.status, membership.access_ends_at, now)
    if not rules.counts_as_administrator(membership.role, status):
        return
    others = await uow.session.scalar(
        select(func.count()).select_from(Membership).where(
            Membership.company_id == membership.company_id,
            Membership.id != membership.id,
            Membership.role == Role.ADMINISTRATOR,
            Membership.grants_access(now),
        )
    )
    rules.check_keeps_an_administrator(membership.role, status, int(others or 0), field)


def _api_values(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name == "approver_id" and value is not None:
            value = global_ids.encode("User", value)
        if name == "access_ends_at":
            value = rules.access_ends_on(value)
        out[_API_NAMES.get(name, name)] = value
    return out


def _audit(uow: UnitOfWork, action: str, membership: Membership, company: Company, what: str,
           before: dict[str, Any], after: dict[str, Any]) -> None:
    """R29: who, which client, what, the subject and the values before and after."""
    uow.audit(action, membership, f"Membership in {company.name} {what}", before=_api_values(before),
              after=_api_values(after), company_id=company.id, affects=[company])
