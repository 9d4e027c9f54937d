"""Identity rules: email normalisation (R18, matching), Swedish personnummer (R19)."""

import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licensing.errors import RuleViolation
from licensing.identity import (
    blank,
    normalize_email,
    normalize_personnummer,
    personnummer_digest,
)
from models.enums import UserErrorCode

TODAY = date(2025, 6, 1)
FIELD = ("input", "personalIdentityNumber")


def pnr(raw: str, today: date = TODAY) -> str:
    return normalize_personnummer(raw, today, FIELD)


# --- email -------------------------------------------------------------------


def test_email_is_stripped_and_lower_cased_for_case_insensitive_matching() -> None:
    assert (
        normalize_email("  Anna.Svensson@Example.SE \n", ["email"])
        == "anna.svensson@example.se"
    )


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "anna",
        "anna@",
        "@example.se",
        "anna@example",
        "anna@@example.se",
        "a@b@example.se",
        "anna svensson@example.se",
        "anna@exa mple.se",
        "anna@example.",
        "anna@.se",
        "anna@example..se",
    ],
)
def test_implausible_email_is_invalid_input_with_field_path(raw: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        normalize_email(raw, ["input", "email"])
    assert caught.value.code is UserErrorCode.INVALID_INPUT
    assert caught.value.field == ["input", "email"]


def test_blank_is_none_or_whitespace() -> None:
    assert blank(None)
    assert blank("")
    assert blank(" \t\n")
    assert not blank(" x ")


# --- personnummer: valid forms ----------------------------------------------
# 811228-9874: Luhn over 811228987 with weights 2,1,2,...:
# 16->7, 1, 2, 2, 4, 8, 18->9, 8, 14->5 = 46 -> check digit 4.


@pytest.mark.parametrize(
    "raw",
    ["811228-9874", "8112289874", "19811228-9874", "198112289874", " 811228-9874 "],
)
def test_personnummer_all_forms_give_the_12_digit_canonical_form(raw: str) -> None:
    assert pnr(raw) == "198112289874"


def test_personnummer_10_digit_form_takes_latest_century_not_in_future() -> None:
    # 250601-1234: 4,5,0,6,0,1,2,2,6 = 26 -> 4; born today is not in the future.
    assert pnr("250601-1234") == "202506011234"
    # 250602-1233: one day in the future this century, so 1925.
    assert pnr("250602-1233") == "192506021233"


def test_personnummer_plus_sign_means_one_century_earlier() -> None:
    # 120101-1218: 2,2,0,1,0,1,2,2,2 = 12 -> 8.
    assert pnr("120101-1218") == "201201011218"
    assert pnr("120101+1218") == "191201011218"


def test_personnummer_coordination_number_day_plus_60_is_accepted() -> None:
    # 811288-9871: the 28th + 60; 7,1,2,2,7,8,9,8,5 = 49 -> 1.
    assert pnr("811288-9871") == "198112889871"


def test_personnummer_feb_29_needs_a_leap_year_in_the_resolved_century() -> None:
    # 000229-1235: 0,0,0,2,4,9,2,2,6 = 25 -> 5. 2000 is a leap year, 1900 is not.
    assert pnr("000229-1235") == "200002291235"
    with pytest.raises(RuleViolation):
        pnr("000229+1235")


# --- personnummer: invalid ---------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "811228-9875",  # bad check digit
        "19811228-9873",  # bad check digit, 12-digit form
        "810230-1234",  # 30 February
        "811328-9874",  # 13th month
        "811200-9874",  # day 0
        "811292-9874",  # coordination day 32
        "81122A-9874",  # letter
        "811228-98741",  # too long
        "811228-987",  # too short
        "1981122898741",  # 13 digits
        "811228 9874",  # space is no separator
        "19811228+9874",  # '+' only belongs to the 10-digit form
        "811228--9874",
        "",
        "\uff12\uff15\uff10\uff16\uff10\uff11-\uff11\uff12\uff13\uff14",  # wide digits
    ],
)
def test_personnummer_invalid_is_refused_with_its_code_and_field(raw: str) -> None:
    with pytest.raises(RuleViolation) as caught:
        pnr(raw)
    assert caught.value.code is UserErrorCode.INVALID_PERSONAL_IDENTITY_NUMBER
    assert caught.value.field == list(FIELD)
    assert caught.value.message


def test_personnummer_12_digit_birth_date_in_future_is_refused() -> None:
    # 991231-1231: 18->9,9,2,2,6,1,2,2,6 = 39 -> 1; as 2099 it is in the future.
    assert pnr("991231-1231") == "199912311231"
    with pytest.raises(RuleViolation):
        pnr("20991231-1231")


def test_personnummer_error_message_never_contains_the_number() -> None:
    for raw in ("811228-9875", "810230-1234", "19811228+9874", "81122A-9874"):
        with pytest.raises(RuleViolation) as caught:
            pnr(raw)
        message = caught.value.message
        for fragment in ("811228", "810230", "9875", "9874", "1234"):
            assert fragment not in message


# --- digest ------------------------------------------------------------------


def test_personnummer_digest_is_keyed_and_matchable_but_not_readable() -> None:
    key = b"server-secret"
    canonical = pnr("811228-9874")
    digest = personnummer_digest(canonical, key)
    assert digest == personnummer_digest(pnr("19811228-9874"), key)  # matches any form
    assert re.fullmatch("[0-9a-f]{64}", digest)
    assert canonical not in digest
    assert digest != personnummer_digest(canonical, b"other-secret")
    assert digest != personnummer_digest("198112289882", key)


def test_personnummer_digest_refuses_empty_key() -> None:
    with pytest.raises(ValueError, match="key"):
        personnummer_digest("198112289874", b"")


# --- properties --------------------------------------------------------------


def _luhn(digits: str) -> int:
    total = 0
    for i, ch in enumerate(digits):
        n = int(ch) * (1 if i % 2 else 2)
        total += n - 9 if n > 9 else n
    return (10 - total % 10) % 10


@given(
    st.dates(min_value=date(1926, 1, 1), max_value=TODAY),
    st.integers(min_value=0, max_value=999),
    st.booleans(),
)
def test_any_valid_personnummer_round_trips_between_forms(
    born: date, serial: int, coordination: bool
) -> None:
    day = born.day + (60 if coordination else 0)
    short = f"{born:%y%m}{day:02d}{serial:03d}"
    ten = short + str(_luhn(short))
    canonical = f"{born.year}{ten[2:]}"
    assert pnr(ten) == canonical
    assert pnr(f"{ten[:6]}-{ten[6:]}") == canonical
    assert pnr(canonical) == canonical
    assert pnr(f"{canonical[:8]}-{canonical[8:]}") == canonical


@given(
    st.dates(min_value=date(1926, 1, 1), max_value=TODAY),
    st.integers(0, 999),
    st.data(),
)
def test_any_wrong_check_digit_is_refused(
    born: date, serial: int, data: st.DataObject
) -> None:
    short = f"{born:%y%m%d}{serial:03d}"
    wrong = data.draw(st.integers(0, 9).filter(lambda d: d != _luhn(short)))
    with pytest.raises(RuleViolation):
        pnr(short + str(wrong))
