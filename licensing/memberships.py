"""Membership rules as plain functions (R13, R21, R22, R52): which changes are allowed,
whether a membership grants its role and holds a NAMED seat. The resolvers count and lock;
these decide."""

from collections.abc import Sequence
from datetime import UTC, date, datetime, time

from licensing.errors import RuleViolation
from models.enums import LicenseType, MembershipStatus, Role, UserErrorCode


def access_ended(access_ends_at: datetime | None, now: datetime) -> bool:
    """R52: an end is exclusive, so access is over at the very moment it ends."""
    return access_ends_at is not None and access_ends_at <= now


def effective_status(status: MembershipStatus, access_ends_at: datetime | None, now: datetime) -> MembershipStatus:
    """R52: what the membership is now. The stored status cannot change by itself when an end
    passes (no job runs), so from its end on a membership reads DEACTIVATED: the status
    everyone sees, grants, seats and R21 all agree that an ended membership is deactivated."""
    return MembershipStatus.DEACTIVATED if access_ended(access_ends_at, now) else status


def grants_access(status: MembershipStatus, access_ends_at: datetime | None, now: datetime) -> bool:
    """Section 3 and R52, the same as `models.Membership.grants_access` in SQL: INVITED and
    ACTIVE memberships grant their role until their end; DEACTIVATED ones nothing."""
    return effective_status(status, access_ends_at, now) is not MembershipStatus.DEACTIVATED


def holds_seat(status: MembershipStatus, invitation_expires_at: datetime | None, access_ends_at: datetime | None,
               now: datetime) -> bool:
    """R13 and R52, the same as `licensing.usage.holds_seat` in SQL: a membership that grants
    access and is ACTIVE, or INVITED with an invitation that has not lapsed."""
    if not grants_access(status, access_ends_at, now):
        return False
    if status is MembershipStatus.INVITED:
        return invitation_expires_at is None or invitation_expires_at > now
    return True


def access_end(until: date, today: date, field: Sequence[str]) -> datetime:
    """R52: `until` is the first day without access, so access ends at 00:00 UTC of that day.
    It must be after today (the UTC date): a grant that ends before it begins is a mistake."""
    if until <= today:
        raise RuleViolation(
            UserErrorCode.INVALID_INPUT,
            "`until` is the first day without access and must be after today (UTC).",
            field,
        )
    return datetime.combine(until, time.min, tzinfo=UTC)


def access_ends_on(access_ends_at: datetime | None) -> date | None:
    """The first day without access, as the API shows it (ends are at 00:00 UTC)."""
    return None if access_ends_at is None else access_ends_at.astimezone(UTC).date()


def invitation_lapse(default: datetime | None, access_ends_at: datetime | None) -> datetime | None:
    """An invitation lapses at its usual time (None: never, R51), or when access ends if that
    comes first: a link to access that has ended is never worth sending or opening."""
    if default is None:
        return access_ends_at
    return default if access_ends_at is None else min(default, access_ends_at)


def check_keeps_its_end(role: Role, new_role: Role, access_ends_at: datetime | None, now: datetime,
                        field: Sequence[str]) -> None:
    """R52: an end belongs to accountant access. While one lies ahead the role stays
    ACCOUNTANT, so that no ADMINISTRATOR ever leaves by the clock and R21 holds."""
    if new_role is not role and access_ends_at is not None and not access_ended(access_ends_at, now):
        raise RuleViolation(
            UserErrorCode.INVALID_INPUT,
            "This accountant's access has an end; its role cannot change before then. Revoke it first.",
            field,
        )


def check_is_accountant(role: Role, field: Sequence[str]) -> None:
    """revokeAccountantAccess ends accountant access only; other members are deactivated."""
    if role is not Role.ACCOUNTANT:
        raise RuleViolation(
            UserErrorCode.INVALID_INPUT,
            "This is not an accountant's membership; use deactivateMembership.",
            field,
        )


def counts_as_administrator(role: Role, status: MembershipStatus) -> bool:
    """R21: every ADMINISTRATOR membership that is not DEACTIVATED counts, INVITED ones too."""
    return role is Role.ADMINISTRATOR and status is not MembershipStatus.DEACTIVATED


def check_keeps_an_administrator(
    role: Role, status: MembershipStatus, other_administrators: int, field: Sequence[str]
) -> None:
    """R21: the membership is about to stop being an administrator (deactivated, or given
    another role); refused when it is the company's last one."""
    if counts_as_administrator(role, status) and other_administrators == 0:
        raise RuleViolation(
            UserErrorCode.LAST_ADMINISTRATOR,
            "This is the company's last administrator; make someone else administrator first.",
            field,
        )


def check_license_type_change(current: LicenseType, new: LicenseType, field: Sequence[str]) -> None:
    """Client-user licences are handed out and taken back with the client-user mutations."""
    if new is current:
        return
    if new is LicenseType.CLIENT_USER or current is LicenseType.CLIENT_USER:
        raise RuleViolation(
            UserErrorCode.INVALID_INPUT,
            "Client-user licences are managed with assignClientUser and removeClientUserCompany.",
            field,
        )


def check_accountant_is_named(role: Role, license_type: LicenseType, field: Sequence[str]) -> None:
    """R22: an accountant's membership is NAMED and takes a seat."""
    if role is Role.ACCOUNTANT and license_type is not LicenseType.NAMED:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "An accountant's membership is NAMED.", field)


def needs_named_seat(
    new_license_type: LicenseType, status: MembershipStatus, invitation_expires_at: datetime | None,
    access_ends_at: datetime | None, now: datetime,
) -> bool:
    """Whether a membership with this status and licence must hold a NAMED seat from now on:
    a DEACTIVATED or ended membership, or a lapsed invitation, takes none until it is
    reactivated or the invitation is renewed."""
    return new_license_type is LicenseType.NAMED and holds_seat(status, invitation_expires_at, access_ends_at, now)


def check_can_reactivate(status: MembershipStatus, field: Sequence[str]) -> None:
    """Only DEACTIVATED memberships are reactivated; a lapsed invitation is renewed with
    resendWelcomeEmail instead."""
    if status is not MembershipStatus.DEACTIVATED:
        raise RuleViolation(
            UserErrorCode.INVALID_INPUT,
            "Only a deactivated membership can be reactivated; renew a lapsed invitation with resendWelcomeEmail.",
            field,
        )


def reactivated_status(activated_at: datetime | None) -> MembershipStatus:
    """Back to ACTIVE when the user had accepted the invitation, else INVITED again."""
    return MembershipStatus.ACTIVE if activated_at is not None else MembershipStatus.INVITED


def invitation_lapses(email: str | None) -> bool:
    """R13 and R51: an invitation lapses (14 days by default) when its link can be mailed; a
    user without an email accepts by signing in with BankID, so theirs waits (and holds its
    seat) until then, or until the membership is deactivated."""
    return email is not None and bool(email.strip())


def check_can_resend_invitation(status: MembershipStatus, field: Sequence[str]) -> None:
    """Only a pending invitation is sent again (or, for a user without an email, renewed)."""
    if status is not MembershipStatus.INVITED:
        raise RuleViolation(
            UserErrorCode.INVALID_INPUT, "Only a pending invitation gets a welcome email.", field
        )
