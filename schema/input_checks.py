"""R58: strings no field has a use for are refused before execution, whatever field they are
sent to: a control character (C0 but tab, line feed and carriage return; DEL; C1), a lone
surrogate (which no database can encode), or more than BUREAU_MAX_STRING_LENGTH characters;
and a variable's list of more than BUREAU_MAX_LIST_ITEMS items.
PostgreSQL cannot store a NUL at all, and SQLite would store it silently.

The variables' values are read on every request, before validation; the document's string
literals by a validation rule, once per distinct document (schema.documents, R76). So every
operation, mutation or not, is covered; the refusal is a top-level error with
`extensions.code` INVALID_INPUT and, for a variable, the path of the value at fault.
"""

import functools
import re
from collections.abc import Iterator
from typing import Any

from graphql import ASTValidationRule, GraphQLError, StringValueNode
from strawberry.extensions import SchemaExtension

from schema.limits import limits_of

INVALID_INPUT = "INVALID_INPUT"
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def has_control_character(text: str) -> bool:
    return _FORBIDDEN.search(text) is not None


def _fault(text: str, max_length: int) -> str | None:
    if has_control_character(text):
        return "holds a control character"
    if len(text) > max_length:
        return f"is longer than {max_length} characters"
    return None


def _faults(value: Any, max_length: int, max_items: int) -> Iterator[tuple[str, list[str | int]]]:
    """What is wrong in a JSON value, with its path: strings (keys included) as _fault says, and
    lists longer than max_items, found before graphql-core coerces them item by item. Iterative,
    for deep values."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            fault = _fault(item, max_length)
            if fault is not None:
                yield fault, at
        elif isinstance(item, dict):
            for key, child in item.items():
                fault = _fault(str(key), max_length)
                if fault is not None:
                    yield "has a name that " + fault, at
                stack.append((child, [*at, str(key)]))
        elif isinstance(item, list):
            if len(item) > max_items:
                yield f"is a list of more than {max_items} items", at
            else:
                stack.extend((child, [*at, index]) for index, child in enumerate(item))


def _error(what: str, fault: str, path: list[str | int] | None = None) -> GraphQLError:
    extensions: dict[str, Any] = {"code": INVALID_INPUT}
    if path is not None:
        extensions["field"] = path
    return GraphQLError(f"{what} {fault}.", extensions=extensions)


@functools.cache
def document_strings_rule(max_length: int) -> type[ASTValidationRule]:
    """The document's string literals; one class per length, so that schema.documents finds the
    document it checked before again."""

    class InputStrings(ASTValidationRule):
        def enter_string_value(self, node: StringValueNode, *_: object) -> None:
            fault = _fault(node.value, max_length)
            if fault is not None:
                self.report_error(GraphQLError(f"A string in the document {fault}.", node,
                                               extensions={"code": INVALID_INPUT}))

    return InputStrings


def variable_errors(variables: dict[str, Any] | None, max_length: int, max_items: int) -> list[GraphQLError]:
    """The first fault of the variables' values, which change with every request: never cached."""
    for fault, path in _faults(variables or {}, max_length, max_items):
        return [_error("A variable", fault, ["variables", *path])]
    return []


class InputChecks(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        limits = limits_of(context.context)
        context.validation_rules = (*context.validation_rules, document_strings_rule(limits.max_string_length))
        yield

    def on_parse(self) -> Iterator[None]:
        # Outside a string literal graphql-core's lexer would call it a syntax error; the cause is the same.
        query = self.execution_context.query
        if query is not None and has_control_character(query):
            raise _error("The document", "holds a control character")
        yield

    def on_validate(self) -> Iterator[None]:
        # Before schema.scopes validates the document: bad variables refuse the operation, whatever
        # the document, on every request.
        context = self.execution_context
        if context.pre_execution_errors is None and context.graphql_document is not None:
            limits = limits_of(context.context)
            context.pre_execution_errors = variable_errors(context.variables, limits.max_string_length,
                                                           limits.max_list_items) or None
        yield
