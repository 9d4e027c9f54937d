"""The wait schedule of sign-in throttling (auth/passwords.py, rule 1) and its settings."""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auth.passwords import AttemptLimits, delay_after

DEFAULTS = AttemptLimits()


def test_the_free_failures_cost_no_wait() -> None:
    assert [delay_after(n, DEFAULTS) for n in range(DEFAULTS.free_failures + 1)] == [timedelta(0)] * 6


def test_each_further_failure_doubles_the_wait_up_to_the_cap() -> None:
    waits = [delay_after(n, DEFAULTS).total_seconds() for n in range(6, 18)]
    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]


@given(st.integers(min_value=0, max_value=10**9))
def test_the_wait_never_shrinks_with_more_failures_and_never_passes_the_cap(failures: int) -> None:
    assert timedelta(0) <= delay_after(failures, DEFAULTS) <= delay_after(failures + 1, DEFAULTS)
    assert delay_after(failures, DEFAULTS) <= DEFAULTS.max_delay


def test_other_settings() -> None:
    limits = AttemptLimits(free_failures=2, first_delay=timedelta(seconds=1), max_delay=timedelta(hours=1))
    assert [delay_after(n, limits).total_seconds() for n in (2, 3, 4, 5, 14, 1000)] == [0, 1, 2, 4, 2048, 3600]
    no_free = AttemptLimits(free_failures=0)
    assert [delay_after(n, no_free).total_seconds() for n in (0, 1, 2)] == [0, 2, 4]


@pytest.mark.parametrize("settings", [
    {"free_failures": -1},
    {"address_failures": 0},
    {"account_addresses": 0},
    {"account_window": timedelta(days=2)},  # failures would be forgotten while they still count
    {"address_window": timedelta(days=2)},
    {"known_for": timedelta(hours=1)},  # a success would be forgotten before failures
])
def test_settings_that_would_break_the_rules_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AttemptLimits(**settings)  # type: ignore[arg-type]
