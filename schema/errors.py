"""Errors: business failures are userErrors in payloads; the rest are top-level errors
with `extensions.code`, and unexpected exception text never reaches a client."""

import logging
from collections.abc import Iterator

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from auth.policy import Forbidden
from licensing.errors import RuleViolation
from models.enums import UserErrorCode as UserErrorCodeEnum

log = logging.getLogger("bureau.graphql")

UserErrorCode = strawberry.enum(UserErrorCodeEnum)


@strawberry.type(description="A business-rule failure of a mutation. `code` is stable; `message` is for people.")
class UserError:
    code: UserErrorCode  # type: ignore[valid-type]
    message: str
    field: list[str] = strawberry.field(
        description='Path of the input field at fault, e.g. ["input", "seats"]; empty when not tied to one.'
    )

    @classmethod
    def of(cls, violation: RuleViolation) -> "UserError":
        return cls(code=violation.code, message=violation.message, field=list(violation.field))


class BadInput(Exception):
    """A malformed argument outside a mutation's input rules (a bad cursor, a negative page)."""


CODES: dict[type[Exception], str] = {Forbidden: "FORBIDDEN", BadInput: "BAD_USER_INPUT"}


def _classify(error: GraphQLError) -> GraphQLError:
    if error.extensions and "code" in error.extensions:
        return error
    original = error.original_error
    if original is None:
        # graphql-core's own parse and validation errors: safe to show as they are.
        error.extensions = {**(error.extensions or {}), "code": "GRAPHQL_VALIDATION_FAILED"}
        return error
    for kind, code in CODES.items():
        if isinstance(original, kind):
            error.extensions = {**(error.extensions or {}), "code": code}
            return error
    if isinstance(original, GraphQLError):  # e.g. a scalar's parse error
        error.extensions = {**(error.extensions or {}), "code": "BAD_USER_INPUT"}
        return error
    log.error("unexpected error at %s", error.path, exc_info=original)
    return GraphQLError(
        "Unexpected error.",
        nodes=error.nodes,
        path=error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR"},
    )


class ErrorCodes(SchemaExtension):
    """Gives every top-level error an `extensions.code` and masks unexpected ones."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [_classify(error) for error in result.errors]
