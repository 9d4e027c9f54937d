"""Membership rules as plain functions (R13, R21, R22): which changes are allowed, and
whether a membership holds a NAMED seat. The resolvers count and lock; these decide."""

from collections.abc import Sequence
from datetime import datetime

from licensing.errors import RuleViolation
from models.enums import LicenseType, MembershipStatus, Role, UserErrorCode


def holds_seat(status: MembershipStatus, invitation_expires_at: datetime | None, now: datetime) -> bool:
    """R13, the same as `licensing.usage.holds_seat` in SQL: an ACTIVE membership, or an
    INVITED one whose invitation has not lapsed."""
    if status is MembershipStatus.ACTIVE:
        return True
    if status is MembershipStatus.INVITED:
        return invitation_expires_at is None or invitation_expires_at > now
    return False


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
    now: datetime,
) -> bool:
    """Whether a membership with this status and licence must hold a NAMED seat from now on:
    a DEACTIVATED membership or a lapsed invitation takes none until it is reactivated or
    the invitation is renewed."""
    return new_license_type is LicenseType.NAMED and holds_seat(status, invitation_expires_at, now)


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
