"""Client users (R16, R17): the pure rules.

A client user is a firm-issued named licence for one person (one per firm and user),
charged to the CLIENT_USER seats of the firm's master subscription: seats in use are the
firm's ClientUser rows (`licensing.usage.client_users_assigned`), however many companies
each one works in. It works in 1 to MAX_COMPANIES of the firm's own client companies when
assigned; removing companies later may leave it with none (it keeps its seat and can be
given companies again).
"""

from collections.abc import Sequence

from licensing.errors import RuleViolation
from models.enums import UserErrorCode

# A client user works in at most this many of the firm's client companies (R17).
MAX_COMPANIES = 5


def check_certified(is_certified: bool, field: Sequence[str]) -> None:
    """R16: only a certified firm hands out client users (it may still buy the seats)."""
    if not is_certified:
        raise RuleViolation(UserErrorCode.FIRM_NOT_CERTIFIED,
                            "Only a certified firm may assign client users; complete the certification first.", field)


def check_seat_free(purchased: int, assigned: int, field: Sequence[str]) -> None:
    """R16: one more client user must fit the master subscription's CLIENT_USER seats."""
    if assigned + 1 > purchased:
        raise RuleViolation(
            UserErrorCode.SEAT_LIMIT_REACHED,
            f"All {purchased} CLIENT_USER seats of the firm's master subscription are assigned; add seats first.",
            field,
        )


def check_company_count(count: int, field: Sequence[str]) -> None:
    """R17 when assigning: at least one company, at most MAX_COMPANIES."""
    if count < 1:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "Name at least one company for the client user.", field)
    if count > MAX_COMPANIES:
        raise RuleViolation(UserErrorCode.CLIENT_USER_COMPANY_LIMIT,
                            f"A client user works in at most {MAX_COMPANIES} companies.", field)


def check_can_add_company(current: int, field: Sequence[str]) -> None:
    """R17 when adding: the sixth company is refused."""
    if current + 1 > MAX_COMPANIES:
        raise RuleViolation(UserErrorCode.CLIENT_USER_COMPANY_LIMIT,
                            f"The client user already works in {current} companies; at most {MAX_COMPANIES}.",
                            field)


def check_distinct(ids: Sequence[str], field: Sequence[str]) -> None:
    """Each company once: a repeated ID is refused at its position in the list."""
    seen: set[str] = set()
    for index, value in enumerate(ids):
        if value in seen:
            raise RuleViolation(UserErrorCode.INVALID_INPUT, "Each company once.", [*field, str(index)])
        seen.add(value)


def check_who(user_id: str | None, name: str | None, email: str | None, field: Sequence[str]) -> None:
    """Either an existing user by ID, or a person by name and email; not both."""
    if user_id is not None and (name is not None or email is not None):
        raise RuleViolation(UserErrorCode.INVALID_INPUT,
                            "Give either userId or name and email, not both.", [*field, "userId"])
