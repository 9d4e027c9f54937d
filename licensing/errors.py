"""The one way a rule says no: a RuleViolation, turned into a userError by the API."""

from collections.abc import Sequence

from models.enums import UserErrorCode


class RuleViolation(Exception):
    """A business rule refused the change; the mutation's transaction is rolled back."""

    def __init__(self, code: UserErrorCode, message: str, field: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = list(field)
