"""Pure forms of the membership rules (R13, R18, R21, R22)."""

from datetime import UTC, datetime, timedelta

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
    assert rules.holds_seat(ACTIVE, None, NOW)
    assert rules.holds_seat(ACTIVE, NOW - timedelta(days=30), NOW)
    assert rules.holds_seat(INVITED, NOW + timedelta(seconds=1), NOW)
    assert rules.holds_seat(INVITED, None, NOW)
    assert not rules.holds_seat(INVITED, NOW, NOW)  # lapsed at the moment it expires
    assert not rules.holds_seat(INVITED, NOW - timedelta(days=1), NOW)
    assert not rules.holds_seat(DEACTIVATED, NOW + timedelta(days=1), NOW)


def test_a_change_to_named_needs_a_seat_only_while_the_membership_holds_one() -> None:
    assert rules.needs_named_seat(LicenseType.NAMED, ACTIVE, None, NOW)
    assert rules.needs_named_seat(LicenseType.NAMED, INVITED, NOW + timedelta(days=1), NOW)
    assert not rules.needs_named_seat(LicenseType.NAMED, INVITED, NOW - timedelta(days=1), NOW)
    assert not rules.needs_named_seat(LicenseType.NAMED, DEACTIVATED, None, NOW)
    assert not rules.needs_named_seat(LicenseType.CONCURRENT, ACTIVE, None, NOW)


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
