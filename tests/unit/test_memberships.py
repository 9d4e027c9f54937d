"""Pure forms of the membership rules (R13, R18, R21, R22)."""

from datetime import UTC, date, datetime, timedelta

import pytest

from licensing import memberships as rules
from licensing.errors import RuleViolation
from models.enums import LicenseType, MembershipStatus, Role, UserErrorCode

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
ACTIVE, INVITED, DEACTIVATED = MembershipStatus.ACTIVE, MembershipStatus.INVITED, MembershipStatus.DEACTIVATED


def refused(code: UserErrorCode, call, *args) -> RuleViolation:  # type: ignore[no-untyped-def]
    with pytest.raises(RuleViolation) as caught:
        call(*args)
    assert caught.value.code is code
    return caught.value


def test_last_administrator_cannot_be_deactivated() -> None:
    error = refused(UserErrorCode.LAST_ADMINISTRATOR, rules.check_keeps_an_administrator,
                    Role.ADMINISTRATOR, ACTIVE, 0, ["input", "membershipId"])
    assert error.field == ["input", "membershipId"]
    rules.check_keeps_an_administrator(Role.ADMINISTRATOR, ACTIVE, 1, ["input", "membershipId"])


def test_invited_administrator_counts_as_an_administrator() -> None:
    assert rules.counts_as_administrator(Role.ADMINISTRATOR, INVITED)
    assert rules.counts_as_administrator(Role.ADMINISTRATOR, ACTIVE)
    assert not rules.counts_as_administrator(Role.ADMINISTRATOR, DEACTIVATED)
    assert not rules.counts_as_administrator(Role.ACCOUNTANT, ACTIVE)
    refused(UserErrorCode.LAST_ADMINISTRATOR, rules.check_keeps_an_administrator, Role.ADMINISTRATOR, INVITED, 0,
            ["input", "role"])


def test_a_deactivated_or_non_administrator_membership_is_never_the_last_administrator() -> None:
    rules.check_keeps_an_administrator(Role.ADMINISTRATOR, DEACTIVATED, 0, [])
    rules.check_keeps_an_administrator(Role.REPORTER, ACTIVE, 0, [])


def test_only_active_and_unlapsed_invited_memberships_hold_a_seat() -> None:
    assert rules.holds_seat(ACTIVE, None, None, NOW)
    assert rules.holds_seat(ACTIVE, NOW - timedelta(days=30), None, NOW)
    assert rules.holds_seat(INVITED, NOW + timedelta(seconds=1), None, NOW)
    assert rules.holds_seat(INVITED, None, None, NOW)
    assert not rules.holds_seat(INVITED, NOW, None, NOW)  # lapsed at the moment it expires
    assert not rules.holds_seat(INVITED, NOW - timedelta(days=1), None, NOW)
    assert not rules.holds_seat(DEACTIVATED, NOW + timedelta(days=1), None, NOW)


def test_a_change_to_named_needs_a_seat_only_while_the_membership_holds_one() -> None:
    assert rules.needs_named_seat(LicenseType.NAMED, ACTIVE, None, None, NOW)
    assert rules.needs_named_seat(LicenseType.NAMED, INVITED, NOW + timedelta(days=1), None, NOW)
    assert not rules.needs_named_seat(LicenseType.NAMED, INVITED, NOW - timedelta(days=1), None, NOW)
    assert not rules.needs_named_seat(LicenseType.NAMED, DEACTIVATED, None, None, NOW)
    assert not rules.needs_named_seat(LicenseType.CONCURRENT, ACTIVE, None, None, NOW)
    assert not rules.needs_named_seat(LicenseType.NAMED, ACTIVE, None, NOW, NOW)  # ended (R52)


# ------------------------------------------------------------------ R52: access with an end


def test_r46_access_ends_at_its_end_and_then_reads_deactivated() -> None:
    later, earlier = NOW + timedelta(microseconds=1), NOW - timedelta(microseconds=1)
    for status in (ACTIVE, INVITED):
        assert rules.grants_access(status, None, NOW) and rules.grants_access(status, later, NOW)
        assert rules.effective_status(status, later, NOW) is status
        # the end is exclusive: at that very moment access is over
        for ended in (NOW, earlier):
            assert not rules.grants_access(status, ended, NOW)
            assert rules.effective_status(status, ended, NOW) is DEACTIVATED
            assert not rules.holds_seat(status, None, ended, NOW)
    assert rules.holds_seat(ACTIVE, None, later, NOW)
    assert not rules.grants_access(DEACTIVATED, None, NOW)
    assert not rules.grants_access(DEACTIVATED, later, NOW)


def test_r46_until_is_the_first_day_without_access_and_must_be_after_today() -> None:
    today = NOW.date()
    assert rules.access_end(today + timedelta(days=1), today, ["input", "until"]) == datetime(
        2025, 3, 11, 0, 0, tzinfo=UTC)
    assert rules.access_ends_on(rules.access_end(date(2025, 4, 1), today, [])) == date(2025, 4, 1)
    assert rules.access_ends_on(None) is None
    for until in (today, today - timedelta(days=1)):
        error = refused(UserErrorCode.INVALID_INPUT, rules.access_end, until, today, ["input", "until"])
        assert error.field == ["input", "until"]


def test_r46_an_invitation_lapses_when_access_ends_if_that_comes_first() -> None:
    default = NOW + timedelta(days=14)
    assert rules.invitation_lapse(default, None) == default
    assert rules.invitation_lapse(default, NOW + timedelta(days=2)) == NOW + timedelta(days=2)
    assert rules.invitation_lapse(default, NOW + timedelta(days=30)) == default


def test_r46_an_accountant_with_an_end_ahead_keeps_its_role() -> None:
    ahead = NOW + timedelta(days=3)
    refused(UserErrorCode.INVALID_INPUT, rules.check_keeps_its_end, Role.ACCOUNTANT, Role.ADMINISTRATOR, ahead, NOW,
            ["input", "role"])
    rules.check_keeps_its_end(Role.ACCOUNTANT, Role.ACCOUNTANT, ahead, NOW, [])
    rules.check_keeps_its_end(Role.ACCOUNTANT, Role.ADMINISTRATOR, None, NOW, [])
    rules.check_keeps_its_end(Role.ACCOUNTANT, Role.ADMINISTRATOR, NOW, NOW, [])  # ended: nothing left to keep


def test_r46_only_accountant_access_is_revoked() -> None:
    rules.check_is_accountant(Role.ACCOUNTANT, [])
    for role in (Role.ADMINISTRATOR, Role.APPROVER, Role.REPORTER):
        refused(UserErrorCode.INVALID_INPUT, rules.check_is_accountant, role, ["input", "membershipId"])


def test_client_user_licences_are_not_set_or_taken_away_here() -> None:
    field = ["input", "licenseType"]
    rules.check_license_type_change(LicenseType.CONCURRENT, LicenseType.NAMED, field)
    rules.check_license_type_change(LicenseType.NAMED, LicenseType.CONCURRENT, field)
    rules.check_license_type_change(LicenseType.CLIENT_USER, LicenseType.CLIENT_USER, field)
    error = refused(UserErrorCode.INVALID_INPUT, rules.check_license_type_change, LicenseType.NAMED,
                    LicenseType.CLIENT_USER, field)
    assert error.field == field
    refused(UserErrorCode.INVALID_INPUT, rules.check_license_type_change, LicenseType.CLIENT_USER,
            LicenseType.NAMED, field)


def test_an_accountant_is_always_named() -> None:
    rules.check_accountant_is_named(Role.ACCOUNTANT, LicenseType.NAMED, [])
    rules.check_accountant_is_named(Role.REPORTER, LicenseType.CONCURRENT, [])
    refused(UserErrorCode.INVALID_INPUT, rules.check_accountant_is_named, Role.ACCOUNTANT, LicenseType.CONCURRENT,
            ["input", "licenseType"])


def test_only_deactivated_memberships_are_reactivated() -> None:
    rules.check_can_reactivate(DEACTIVATED, [])
    for status in (ACTIVE, INVITED):
        error = refused(UserErrorCode.INVALID_INPUT, rules.check_can_reactivate, status, ["input", "membershipId"])
        assert error.field == ["input", "membershipId"]


def test_reactivation_restores_active_only_after_acceptance() -> None:
    assert rules.reactivated_status(NOW - timedelta(days=3)) is ACTIVE
    assert rules.reactivated_status(None) is INVITED


def test_an_invitation_lapses_only_when_it_can_be_mailed() -> None:
    # R51: without an email the invitation waits for the BankID sign-in.
    assert rules.invitation_lapses("a@b.example")
    assert not rules.invitation_lapses(None) and not rules.invitation_lapses("  ")


def test_resend_is_only_for_pending_invitations() -> None:
    for status in (ACTIVE, DEACTIVATED):
        refused(UserErrorCode.INVALID_INPUT, rules.check_can_resend_invitation, status, [])
    rules.check_can_resend_invitation(INVITED, [])


def test_r13_r52_the_sql_and_the_python_rule_are_one_rule() -> None:
    """`licensing.usage.holds_seat` and `Membership.grants_access` (SQL: seat counts, grants)
    answer as `licensing.memberships.holds_seat` and `grants_access` (Python: the resolvers and
    the status the API shows), for every status, invitation lapse and end around now."""
    from sqlalchemy import create_engine, select, text
    from sqlalchemy.orm import Session

    from licensing import usage
    from models import Membership

    moments = [None, NOW - timedelta(days=1), NOW, NOW + timedelta(days=1)]
    grid = [(status, lapse, end) for status in (ACTIVE, INVITED, DEACTIVATED) for lapse in moments for end in moments]
    engine = create_engine("sqlite://")
    Membership.__table__.create(engine)  # type: ignore[attr-defined]
    with Session(engine) as session:
        session.execute(text("PRAGMA foreign_keys = OFF"))  # the rows alone: no firms, companies or users
        for user_id, (status, lapse, end) in enumerate(grid, start=1):
            session.add(Membership(firm_id=1, company_id=1, user_id=user_id, role=Role.ACCOUNTANT,
                                   license_type=LicenseType.NAMED, status=status, invitation_expires_at=lapse,
                                   access_ends_at=end))
        session.commit()
        seated = set(session.scalars(select(Membership.user_id).where(usage.holds_seat(NOW))))
        granting = set(session.scalars(select(Membership.user_id).where(Membership.grants_access(NOW))))
    assert seated == {i for i, (s, lapse, end) in enumerate(grid, start=1) if rules.holds_seat(s, lapse, end, NOW)}
    assert granting == {i for i, (s, _, end) in enumerate(grid, start=1) if rules.grants_access(s, end, NOW)}
    assert 0 < len(seated) < len(granting) < len(grid)
