"""Pure forms of the concurrent-session rules (R14)."""

from datetime import UTC, datetime, timedelta

import pytest

from licensing import sessions as rules
from licensing.errors import RuleViolation
from models.enums import UserErrorCode

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_a_session_is_live_until_it_expires_or_ends() -> None:
    assert rules.is_live(NOW + timedelta(seconds=1), None, NOW)
    assert not rules.is_live(NOW, None, NOW)  # expires_at <= now: expired
    assert not rules.is_live(NOW - timedelta(seconds=1), None, NOW)
    assert not rules.is_live(NOW + timedelta(minutes=5), NOW, NOW)


def test_sessions_live_for_their_time_to_live() -> None:
    assert rules.expiry(NOW, 900) == NOW + timedelta(minutes=15)


def test_no_more_live_sessions_than_purchased_seats() -> None:
    rules.check_concurrent_seat_free(3, 2, ["input", "companyId"])
    with pytest.raises(RuleViolation) as refused:
        rules.check_concurrent_seat_free(3, 3, ["input", "companyId"])
    assert (refused.value.code, refused.value.field) == (UserErrorCode.CONCURRENT_LIMIT_REACHED,
                                                         ["input", "companyId"])
    with pytest.raises(RuleViolation):
        rules.check_concurrent_seat_free(0, 0, [])


def test_only_a_live_session_is_renewed() -> None:
    rules.check_renewable(NOW + timedelta(seconds=1), None, NOW, ["input", "sessionId"])
    for expires_at, ended_at in ((NOW, None), (NOW + timedelta(minutes=5), NOW - timedelta(minutes=1))):
        with pytest.raises(RuleViolation) as refused:
            rules.check_renewable(expires_at, ended_at, NOW, ["input", "sessionId"])
        assert (refused.value.code, refused.value.field) == (UserErrorCode.INVALID_INPUT, ["input", "sessionId"])


def test_an_expired_session_ends_when_it_expired() -> None:
    assert rules.end_time(NOW + timedelta(minutes=5), NOW) == NOW
    assert rules.end_time(NOW - timedelta(minutes=5), NOW) == NOW - timedelta(minutes=5)
