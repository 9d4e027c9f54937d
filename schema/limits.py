"""R59: what one GraphQL document may ask, decided before execution from the document alone.
Each limit is a setting (settings.Limits) and refuses the whole document with its own
`extensions.code`, so that a client tells which one it hit:

QUERY_TOO_LARGE (bytes), TOO_MANY_TOKENS, QUERY_TOO_DEEP, TOO_MANY_ALIASES, TOO_MANY_DIRECTIVES,
TOO_MANY_DUPLICATE_FIELDS, TOO_MANY_OPERATIONS.

Tokens, depth and aliases are strawberry's own limiters; the rest are graphql-core validation
rules written here. A directive may stand at most once per location already (the spec's
UniqueDirectivesPerLocationRule: every directive here is non-repeatable). Batching (a JSON list
of operations) is off: one operation per request.
"""

import functools
from collections import Counter
from collections.abc import Iterator
from typing import Any

from graphql import (
    ASTValidationRule,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
)
from strawberry.extensions import AddValidationRules, MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension

from settings import Limits, Settings

QUERY_TOO_LARGE = "QUERY_TOO_LARGE"
TOO_MANY_TOKENS = "TOO_MANY_TOKENS"


def limits_of(context: Any) -> Limits:
    runtime = getattr(context, "runtime", None)
    settings: Settings = runtime.settings if runtime is not None else Settings()
    return settings.limits


class _Coded:
    """A validation context whose reported errors carry `code`: strawberry's limiters report
    plain errors, which ErrorCodes would call GRAPHQL_VALIDATION_FAILED."""

    def __init__(self, context: ValidationContext, code: str) -> None:
        self._context, self._code = context, code

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {**(error.extensions or {}), "code": self._code}
        self._context.report_error(error)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def coded(limiter: AddValidationRules, code: str) -> list[type[ASTValidationRule]]:
    def wrap(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
        class Coded(ASTValidationRule):
            def __new__(cls, context: ValidationContext) -> Any:  # type: ignore[misc]
                return rule(_Coded(context, code))  # type: ignore[arg-type]

        return Coded

    return [wrap(rule) for rule in limiter.validation_rules]


class _CountingRule(ASTValidationRule):
    """Counts what `count` finds at each node it visits; reports once, at the end."""

    limit = 0
    code = ""
    what = ""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self.found = 0

    def leave_document(self, node: DocumentNode, *_: object) -> None:
        if self.found > self.limit:
            self.report_error(GraphQLError(f"The document has more than {self.limit} {self.what}.",
                                           extensions={"code": self.code}))


def _rule(base: type[_CountingRule], limit: int) -> type[ASTValidationRule]:
    return type(base.__name__, (base,), {"limit": limit})


class DirectiveCount(_CountingRule):
    code, what = "TOO_MANY_DIRECTIVES", "directives"

    def enter_directive(self, node: DirectiveNode, *_: object) -> None:
        self.found += 1


class DuplicateFieldCount(_CountingRule):
    """Fields that repeat a response key in their own selection set: GraphQL merges them, but
    each copy is still checked and planned, so 500 copies cost 500 times what one does."""

    code, what = "TOO_MANY_DUPLICATE_FIELDS", "duplicated fields"

    def enter_selection_set(self, node: SelectionSetNode, *_: object) -> None:
        keys = Counter((s.alias or s.name).value for s in node.selections if isinstance(s, FieldNode))
        self.found += sum(n - 1 for n in keys.values())


class OperationCount(_CountingRule):
    code, what = "TOO_MANY_OPERATIONS", "operations"

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
        self.found += 1


@functools.cache
def document_rules(limits: Limits) -> tuple[type[ASTValidationRule], ...]:
    """The rules of these limits, made once: the same classes every request, so that a checked
    document is found again under them (schema.documents)."""
    return (*coded(QueryDepthLimiter(max_depth=limits.max_depth), "QUERY_TOO_DEEP"),
            *coded(MaxAliasesLimiter(max_alias_count=limits.max_aliases), "TOO_MANY_ALIASES"),
            _rule(DirectiveCount, limits.max_directives),
            _rule(DuplicateFieldCount, limits.max_duplicate_fields),
            _rule(OperationCount, limits.max_operations))


class RequestLimits(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        limits = limits_of(context.context)
        context.parse_options["max_tokens"] = limits.max_tokens  # as strawberry's MaxTokensLimiter does
        context.validation_rules = (*context.validation_rules, *document_rules(limits))
        yield

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        limits = limits_of(context.context)
        if context.query is not None and len(context.query.encode()) > limits.max_query_bytes:
            raise GraphQLError(f"The query is larger than {limits.max_query_bytes} bytes.",
                               extensions={"code": QUERY_TOO_LARGE})
        yield


def token_limit_code(error: GraphQLError) -> str | None:
    """graphql-core's parser stops at max_tokens with a syntax error of its own wording."""
    if error.original_error is None and "tokens. Parsing aborted" in error.message:
        return TOO_MANY_TOKENS
    return None
