"""Concurrent sessions (R14) as pure rules: when a session is live and when a seat is free.

A session is live while it has not been ended and `expires_at` lies after "now"; an expired
session frees its seat by itself, without anyone calling endSession. The SQL form of the
same rule is `licensing.usage.live_sessions`, which counts seats in use for the API.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta

from licensing.errors import RuleViolation
from models.enums import UserErrorCode


def is_live(expires_at: datetime, ended_at: datetime | None, now: datetime) -> bool:
    return ended_at is None and expires_at > now


def expiry(now: datetime, ttl_seconds: int) -> datetime:
    """A session (new or renewed) lives `ttl_seconds` from now."""
    return now + timedelta(seconds=ttl_seconds)


def check_concurrent_seat_free(purchased: int, live: int, field: Sequence[str]) -> None:
    """At most `purchased` live sessions at once."""
    if live >= purchased:
        raise RuleViolation(
            UserErrorCode.CONCURRENT_LIMIT_REACHED,
            f"All {purchased} concurrent seats are in use; try again when a session ends or expires.",
            field,
        )


def check_renewable(expires_at: datetime, ended_at: datetime | None, now: datetime, field: Sequence[str]) -> None:
    """Only a live session is renewed: an ended or expired one has given its seat back,
    which someone else may hold by now, so the caller must start a new session."""
    if ended_at is not None:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "The session has ended; start a new one.", field)
    if expires_at <= now:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "The session has expired; start a new one.", field)


def end_time(expires_at: datetime, now: datetime) -> datetime:
    """When a session ends on endSession: now, or when it expired if that came first."""
    return min(expires_at, now)
