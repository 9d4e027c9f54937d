"""The one way a rule says no: a RuleViolation, turned into a userError by the API."""

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from models.enums import UserErrorCode

T = TypeVar("T")


class RuleViolation(Exception):
    """A business rule refused the change; the mutation's transaction is rolled back. It may
    carry `more`: the other fields of the same input that were wrong too (R53)."""

    def __init__(self, code: UserErrorCode, message: str, field: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = list(field)
        self.more: list[RuleViolation] = []

    @property
    def all(self) -> list["RuleViolation"]:
        return [self, *self.more]


class Problems:
    """Checks every field of an input before refusing it, so that a caller hears of all its
    mistakes at once (R53): `check` returns the checked value, or records the violation and
    returns None; `done` raises them all together."""

    def __init__(self) -> None:
        self.found: list[RuleViolation] = []

    def check(self, validate: Callable[..., T], *args: Any) -> T:
        try:
            return validate(*args)
        except RuleViolation as violation:
            self.found.extend(violation.all)
            return cast(T, None)  # never used: done() refuses the input first

    def done(self) -> None:
        if self.found:
            first, *rest = self.found
            first.more = rest
            raise first
