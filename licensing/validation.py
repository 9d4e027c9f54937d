"""Input checks shared by the rules: names, countries (ISO 3166-1 alpha-2), currencies (ISO 4217)."""

from collections.abc import Sequence
from decimal import Decimal

from licensing.errors import RuleViolation
from models.enums import UserErrorCode

COUNTRIES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY
BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK
FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR
IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK
ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split())

# Active ISO 4217 codes a firm may be invoiced in.
CURRENCIES = frozenset("""
AED AUD BGN BRL CAD CHF CNY CZK DKK EUR GBP HKD HUF ISK JPY MXN NOK NZD PLN RON SEK SGD TRY USD ZAR
""".split())


def require_text(value: str, field: Sequence[str], what: str = "Name", max_length: int = 200) -> str:
    text = value.strip()
    if not text:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, f"{what} must not be blank.", field)
    if len(text) > max_length:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, f"{what} is longer than {max_length} characters.", field)
    return text


def optional_text(value: str | None, field: Sequence[str], what: str, max_length: int = 50) -> str | None:
    """Blank means absent."""
    if value is None or not value.strip():
        return None
    return require_text(value, field, what, max_length)


def require_country(value: str, field: Sequence[str]) -> str:
    code = value.strip().upper()
    if code not in COUNTRIES:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "Country must be an ISO 3166-1 alpha-2 code.", field)
    return code


def require_currency(value: str, field: Sequence[str]) -> str:
    code = value.strip().upper()
    if code not in CURRENCIES:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "Currency must be a supported ISO 4217 code.", field)
    return code


def require_percent(value: Decimal, field: Sequence[str]) -> Decimal:
    if not value.is_finite() or value < 0 or value > 100 or value != value.quantize(Decimal("0.01")):
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "A percentage from 0 to 100 with at most two decimals.", field)
    return value.quantize(Decimal("0.01"))


# Money columns hold NUMERIC(14, 2): at most twelve digits before the point.
# The most a catalog price may be per month: with at most MAX_SEATS seats a line stays within
# the money columns (models.base.MoneyType), whatever the interval.
MAX_AMOUNT = Decimal("100000.00")
# Seats per pool (R7-R9): a documented ceiling, refused above with INVALID_INPUT.
MAX_SEATS = 100_000


def require_amount(value: Decimal, field: Sequence[str]) -> Decimal:
    """A money amount: finite, not negative, at most two decimals (exact Decimal, never float)."""
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0 or value > MAX_AMOUNT:
        raise RuleViolation(UserErrorCode.INVALID_INPUT,
                            f"An amount from 0 to {MAX_AMOUNT} with at most two decimals.", field)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and value != value.quantize(Decimal("0.01")):
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "An amount has at most two decimals.", field)
    return value.quantize(Decimal("0.01"))
