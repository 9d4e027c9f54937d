"""Pure forms of the client-user rules (R16, R17)."""

import pytest

from licensing import client_users as rules
from licensing.errors import RuleViolation
from models.enums import UserErrorCode


def refused(call, *args) -> RuleViolation:  # type: ignore[no-untyped-def]
    with pytest.raises(RuleViolation) as caught:
        call(*args)
    return caught.value


def test_uncertified_firm_cannot_assign_client_users() -> None:
    rules.check_certified(True, ["input", "firmId"])
    error = refused(rules.check_certified, False, ["input", "firmId"])
    assert (error.code, error.field) == (UserErrorCode.FIRM_NOT_CERTIFIED, ["input", "firmId"])


def test_client_users_are_limited_by_the_client_user_seats() -> None:
    rules.check_seat_free(3, 2, ["input", "firmId"])
    assert refused(rules.check_seat_free, 3, 3, ["input", "firmId"]).code is UserErrorCode.SEAT_LIMIT_REACHED
    # No master subscription, or no CLIENT_USER pool, is zero seats.
    assert refused(rules.check_seat_free, 0, 0, []).code is UserErrorCode.SEAT_LIMIT_REACHED


def test_a_client_user_is_assigned_one_to_five_companies() -> None:
    for count in range(1, rules.MAX_COMPANIES + 1):
        rules.check_company_count(count, ["input", "companyIds"])
    none = refused(rules.check_company_count, 0, ["input", "companyIds"])
    assert (none.code, none.field) == (UserErrorCode.INVALID_INPUT, ["input", "companyIds"])
    six = refused(rules.check_company_count, 6, ["input", "companyIds"])
    assert (six.code, six.field) == (UserErrorCode.CLIENT_USER_COMPANY_LIMIT, ["input", "companyIds"])


def test_sixth_company_is_refused() -> None:
    assert rules.MAX_COMPANIES == 5
    rules.check_can_add_company(4, ["input", "companyId"])
    error = refused(rules.check_can_add_company, 5, ["input", "companyId"])
    assert (error.code, error.field) == (UserErrorCode.CLIENT_USER_COMPANY_LIMIT, ["input", "companyId"])


def test_each_company_is_named_once() -> None:
    rules.check_distinct(["a", "b", "c"], ["input", "companyIds"])
    error = refused(rules.check_distinct, ["a", "b", "a"], ["input", "companyIds"])
    assert (error.code, error.field) == (UserErrorCode.INVALID_INPUT, ["input", "companyIds", "2"])


def test_user_id_or_name_and_email_not_both() -> None:
    rules.check_who("VXNlcjox", None, None, ["input"])
    rules.check_who(None, "Ann", "ann@x.example", ["input"])
    error = refused(rules.check_who, "VXNlcjox", None, "ann@x.example", ["input"])
    assert (error.code, error.field) == (UserErrorCode.INVALID_INPUT, ["input", "userId"])
