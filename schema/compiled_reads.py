"""The compiled read path (R79-R81): a query whose every field compiles (compiled.compiler)
is answered by one SQL statement in place of execution; any other falls back, whole, to the
resolvers. It runs after validation, ScopeCheck and QueryCost have let the operation through
(their verdicts are pre-execution errors, and strawberry executes nothing then), so scopes,
cost, budget and authentication behave as on the resolver path. BUREAU_COMPILED_READS=off
turns it off.
"""

import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Any

from graphql import ExecutionResult, FragmentDefinitionNode, OperationType, get_operation_ast
from graphql.execution.collect_fields import FragmentDetails
from graphql.execution.values import get_variable_values
from sqlalchemy import Select
from strawberry.extensions import SchemaExtension

from auth.principal import Principal
from compiled.compiler import MISSING_TEXT, NOW, Compiler, Unsupported
from models.outage import is_outage
from schema.query import NODE_TYPES

log = logging.getLogger("bureau.compiled")

NODE_SCOPES = {type_name: scope for type_name, (_, _, scope) in NODE_TYPES.items()}

# Building a statement costs more than running it: a dashboard refreshed many times a minute by
# the same caller reuses its statement (and so SQLAlchemy's compiled form of it). The key holds
# everything a statement is made of, so a hit is the statement a miss would build: the document,
# the operation, the variables, and all of the principal that auth.visibility and the node scopes
# read. Only the request's "now" is a parameter. A failed compilation is remembered as None.
CACHE_SIZE = 128
_statements: OrderedDict[Hashable, Select[Any] | None] = OrderedDict()


def principal_key(principal: Principal) -> Hashable:
    grants = principal.grants
    return (principal.scopes, principal.user_id, principal.client_firm_id,
            frozenset(grants.firm_roles.items()), frozenset(grants.companies.items()))


def _cached(key: Hashable, build: Callable[[], Select[Any] | None]) -> Select[Any] | None:
    if key in _statements:
        _statements.move_to_end(key)
        return _statements[key]
    statement = _statements[key] = build()
    if len(_statements) > CACHE_SIZE:
        _statements.popitem(last=False)
    return statement


class CompiledReads(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        request = context.context
        if (context.pre_execution_errors is None or context.pre_execution_errors == []) \
                and request.runtime.settings.compiled_reads and not request.runtime.database.is_sqlite:
            data = await self._answer()
            if data is not None:
                context.result = ExecutionResult(data=data, errors=None)  # type: ignore[assignment]
        yield

    async def _answer(self) -> dict[str, Any] | None:
        """The operation's data from one statement, or None for the resolver path to answer."""
        context = self.execution_context
        document = context.graphql_document
        if document is None:
            return None
        operation = get_operation_ast(document, context.operation_name)
        if operation is None or operation.operation is not OperationType.QUERY:
            return None
        schema = context.schema._schema
        variables = get_variable_values(schema, operation.variable_definitions or (), context.variables or {})
        if isinstance(variables, list):
            return None  # execution reports the variables' errors
        fragments = {d.name.value: FragmentDetails(d) for d in document.definitions
                     if isinstance(d, FragmentDefinitionNode)}
        request = context.context

        def build() -> Select[Any] | None:
            try:
                return Compiler(schema, operation, fragments, variables, request.principal, NODE_SCOPES,
                                request.runtime.settings.limits.max_node_ids).statement()
            except Unsupported:
                return None

        key = (context.query, context.operation_name, json.dumps(context.variables, sort_keys=True),
               principal_key(request.principal))
        statement = _cached(key, build) if context.query is not None else build()
        if statement is None:
            return None
        try:
            answer = await request.db.scalar(statement, {NOW: request.db.now})
        except Exception as exc:
            if is_outage(exc):
                raise
            # A bug of the compiler must cost a slower answer, not a wrong one: log it, answer by resolvers.
            log.exception("compiled read failed; answering through the resolvers")
            await request.db.session.rollback()
            return None
        if not isinstance(answer, str) or MISSING_TEXT in answer:
            return None  # a non-null object the caller cannot see: the resolvers give their error
        data: dict[str, Any] = json.loads(answer)
        return data
