"""Email and Swedish personnummer: normalised and checked (R18, R19)."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import date

from licensing.errors import RuleViolation
from models.enums import UserErrorCode

# ASCII digits only: ``\d`` would also accept e.g. Arabic-Indic digits.
_PNR_RE = re.compile(
    r"(?P<century>[0-9]{2})?(?P<date>[0-9]{6})(?P<sep>[-+]?)(?P<serial>[0-9]{4})"
)
_COORDINATION_OFFSET = 60  # samordningsnummer: day of month + 60


def blank(s: str | None) -> bool:
    """True for None and for strings that hold only whitespace."""
    return s is None or not s.strip()


def normalize_email(raw: str, field: Sequence[str]) -> str:
    """The email stripped and lower-cased, so that users match case-insensitively.

    Only plausibility is checked (one @, a local part, a dotted domain, no spaces);
    whether the address exists is for the welcome email to find out.
    """
    email = raw.strip().lower()
    local, at, domain = email.partition("@")
    labels = domain.split(".")
    plausible = (
        at == "@"
        and email.count("@") == 1
        and local != ""
        and len(labels) >= 2
        and all(label != "" for label in labels)
        and not any(ch.isspace() for ch in email)
        and len(email) <= 254
    )
    if not plausible:
        raise RuleViolation(
            UserErrorCode.INVALID_INPUT, "Not a valid email address.", field
        )
    return email


def _luhn_check_digit(digits: str) -> int:
    """The Luhn check digit for ``digits`` (weights 2, 1, 2, ... from the left)."""
    total = 0
    for i, ch in enumerate(digits):
        product = int(ch) * (2 if i % 2 == 0 else 1)
        total += product // 10 + product % 10
    return (10 - total % 10) % 10


def _invalid(message: str, field: Sequence[str]) -> RuleViolation:
    # Messages describe the problem only: the number itself must never be echoed.
    return RuleViolation(UserErrorCode.INVALID_PERSONAL_IDENTITY_NUMBER, message, field)


def normalize_personnummer(raw: str, today: date, field: Sequence[str]) -> str:
    """A Swedish personnummer (or coordination number) in canonical form YYYYMMDDNNNN.

    Accepts YYYYMMDD-NNNN, YYYYMMDDNNNN, YYMMDD-NNNN, YYMMDDNNNN and YYMMDD+NNNN
    ('+' marks a person aged 100 or more). A 10-digit form gets the most recent
    century that does not put the birth date after ``today``.
    """
    match = _PNR_RE.fullmatch(raw.strip())
    if match is None:
        raise _invalid(
            "A personal identity number has the form YYYYMMDD-NNNN or YYMMDD-NNNN.",
            field,
        )
    century, yymmdd, sep, serial = match.group("century", "date", "sep", "serial")
    yy, month, day = int(yymmdd[0:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    birth_day = day - _COORDINATION_OFFSET if day > _COORDINATION_OFFSET else day

    if century is not None:
        if sep == "+":
            # '+' only disambiguates the century of the short form.
            raise _invalid("'+' is only used in the 10-digit form.", field)
        year = int(century) * 100 + yy
    else:
        year = (today.year // 100) * 100 + yy
        if (year, month, birth_day) > (today.year, today.month, today.day):
            year -= 100
        if sep == "+":
            year -= 100

    try:
        born = date(year, month, birth_day)
    except ValueError:
        raise _invalid(
            "The personal identity number does not contain a valid date.", field
        ) from None
    if born > today:
        raise _invalid(
            "The personal identity number has a birth date in the future.", field
        )

    if _luhn_check_digit(yymmdd + serial[:3]) != int(serial[3]):
        raise _invalid("The personal identity number's check digit is wrong.", field)
    return f"{year:04d}{yymmdd[2:]}{serial}"


def personnummer_digest(canonical: str, key: bytes) -> str:
    """Keyed HMAC-SHA256 of the canonical number: matchable, never readable back.

    A plain hash would not do: there are few enough personnummer to try them all.
    """
    if not key:
        raise ValueError("the digest key must not be empty")
    return hmac.new(key, canonical.encode("ascii"), hashlib.sha256).hexdigest()


def canonical_personnummer(raw: str, today: date) -> str | None:
    """The canonical form of a number that comes from elsewhere than an input (a token's
    claim), or None when it is not a valid number."""
    try:
        return normalize_personnummer(raw, today, [])
    except RuleViolation:
        return None


def check_same_person(
    stored: Sequence[tuple[str | None, str | None]], email: str | None, pin_digest: str | None,
    field: Sequence[str],
) -> None:
    """Identity is the person's own: the users matched by an email and/or a personal identity
    number (their stored (email, digest) pairs) may be reused only when they are one user and
    every identifier given is the one on file. Anything else would attach an identifier to
    someone else's account. The message says nothing of what is stored."""
    agrees = len(stored) == 1 and (email is None or stored[0][0] == email) and (
        pin_digest is None or stored[0][1] == pin_digest)
    if not agrees:
        raise RuleViolation(
            UserErrorCode.IDENTITY_CONFLICT,
            "The email and the personal identity number given do not match one person on file. "
            "Check them with the person, or give only one of them.",
            field,
        )
