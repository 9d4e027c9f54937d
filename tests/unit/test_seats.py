"""Pure forms of the seat rules (R9, R13)."""

import pytest

from licensing.errors import RuleViolation
from licensing.seats import check_not_below_in_use, check_seat_available
from models.enums import UserErrorCode


def test_a_seat_is_free_while_in_use_is_below_purchased() -> None:
    check_seat_available(purchased=3, in_use=2, needed=1, field=["input"])


def test_inviting_beyond_the_purchased_seats_is_refused() -> None:
    with pytest.raises(RuleViolation) as refused:
        check_seat_available(purchased=3, in_use=3, needed=1, field=["input", "licenseType"])
    assert refused.value.code is UserErrorCode.SEAT_LIMIT_REACHED
    assert refused.value.field == ["input", "licenseType"]


def test_needing_no_new_seat_always_fits() -> None:
    check_seat_available(purchased=0, in_use=5, needed=0, field=[])


def test_seats_cannot_go_below_those_in_use() -> None:
    check_not_below_in_use(seats=4, in_use=4, field=[])
    with pytest.raises(RuleViolation) as refused:
        check_not_below_in_use(seats=3, in_use=4, field=["input", "seats"])
    assert refused.value.code is UserErrorCode.SEATS_BELOW_ACTIVE_USERS
