"""Errors: business failures are userErrors in payloads; the rest are top-level errors
with `extensions.code`, and unexpected exception text never reaches a client.

Logging follows observability.logs: a client's mistake (validation, FORBIDDEN, a bad
argument) is logged at INFO with its code and path only, never its message (which may
quote the values sent); an unexpected error at ERROR with a traceback and an error id that
the client receives in `extensions.errorId`."""

import logging
import re
from collections.abc import Iterator

import strawberry
from graphql import GraphQLError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from auth.policy import Forbidden
from licensing.errors import RuleViolation
from models.enums import UserErrorCode as UserErrorCodeEnum
from models.outage import MESSAGE as OUTAGE_MESSAGE
from models.outage import is_outage
from observability.logs import log_unexpected, new_error_id
from schema.limits import token_limit_code

# What strawberry lets out of an operation on purpose, for its HTTP view to answer (400, 405).
STRAWBERRY_ANSWERS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)

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


def _expected(error: GraphQLError, code: str) -> GraphQLError:
    error.extensions = {**(error.extensions or {}), "code": code}
    return error


def _code_of(error: GraphQLError) -> str | None:
    if error.extensions and "code" in error.extensions:
        return str(error.extensions["code"])
    original = error.original_error
    if original is None:
        # graphql-core's own parse and validation errors: safe to show as they are.
        return token_limit_code(error) or "GRAPHQL_VALIDATION_FAILED"
    for kind, code in CODES.items():
        if isinstance(original, kind):
            return code
    if isinstance(original, GraphQLError):  # e.g. a scalar's parse error
        return "BAD_USER_INPUT"
    if is_outage(original):  # R54: the database is down; the HTTP answer becomes a 503 (web/outage.py)
        return "SERVICE_UNAVAILABLE"
    return None


def _classify(error: GraphQLError, operation: str | None) -> GraphQLError:
    code = _code_of(error)
    if code == "SERVICE_UNAVAILABLE":  # the driver's message names hosts; the client needs only to retry
        log.warning("graphql SERVICE_UNAVAILABLE at %s in %s", error.path, operation or "an anonymous operation")
        return GraphQLError(OUTAGE_MESSAGE, nodes=error.nodes, path=error.path, extensions={"code": code})
    if code is not None:
        log.info("graphql %s at %s in %s", code, error.path or "the document", operation or "an anonymous operation")
        return _expected(error, code)
    error_id = new_error_id()
    log_unexpected(log, error_id, error.path, error.original_error or error)
    return GraphQLError(
        f"Unexpected error; reference {error_id}.",  # the message is what a client shows; the id finds the log
        nodes=error.nodes,
        path=error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR", "errorId": error_id},
    )


# graphql-core ends a message with its guesses at what was meant (utilities.did_you_mean).
_SUGGESTION = re.compile(r" Did you mean .*\?$", re.DOTALL)


def _without_suggestion(error: GraphQLError) -> GraphQLError:
    """The error without "Did you mean ...?": guesses let a blind client rebuild the schema."""
    message = _SUGGESTION.sub("", error.message)
    if message == error.message:
        return error
    return GraphQLError(message, nodes=error.nodes, path=error.path, original_error=error.original_error,
                        extensions=error.extensions)


class ErrorCodes(SchemaExtension):
    """Gives every top-level error an `extensions.code` and masks unexpected ones; drops field
    suggestions where introspection is not open (BUREAU_INTROSPECTION=off)."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        try:
            yield
        except (GraphQLError, *STRAWBERRY_ANSWERS):
            raise
        except Exception as exc:
            # Raised by an extension (a database outage during a compiled read, a bug): strawberry
            # would answer with the exception's own text, which may hold SQL. Classified like any other.
            raise _classify(GraphQLError(str(exc), original_error=exc), context.operation_name) from exc
        result = context.result
        if result is not None and result.errors:
            errors = [_classify(error, context.operation_name) for error in result.errors]
            runtime = getattr(context.context, "runtime", None)
            if runtime is None or runtime.settings.introspection == "off":
                errors = [_without_suggestion(error) for error in errors]
            result.errors = errors
