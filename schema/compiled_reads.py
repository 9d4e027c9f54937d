"""The compiled read path (R79-R81): a query whose fields compile (compiled.compiler) is answered
by one SQL statement in place of execution. A field that does not compile is answered by the
resolvers for that subtree only (R101): through `node(id)` of each object the statement found it
under, all of them in one execution, put in place of the statement's placeholders; should that
execution report any error, the whole operation runs through the resolvers, which then give the
error where it belongs. It runs after validation, ScopeCheck and QueryCost have let the operation through
(their verdicts are pre-execution errors, and strawberry executes nothing then), so scopes,
cost, budget and authentication behave as on the resolver path. BUREAU_COMPILED_READS=off
turns it off.
"""

import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    OperationDefinitionNode,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    print_ast,
)
from graphql.execution.collect_fields import FragmentDetails
from graphql.execution.values import get_variable_values
from sqlalchemy import Select
from strawberry.extensions import SchemaExtension

from compiled.compiler import FALLBACK_KEY, MISSING_TEXT, NOW, Compiler, Fallback, Unsupported
from models.outage import is_outage
from schema.cost import requested_cost
from schema.prepared_reads import PREPARED, key_of, prepare, principal_key, variables_key
from schema.query import NODE_TYPES

log = logging.getLogger("bureau.compiled")

NODE_SCOPES = {type_name: scope for type_name, (_, _, scope) in NODE_TYPES.items()}

# Building a statement costs more than running it: a dashboard refreshed many times a minute by
# the same caller reuses its statement (and so SQLAlchemy's compiled form of it). The key holds
# everything a statement is made of, so a hit is the statement a miss would build: the document,
# the operation, the variables, and all of the principal that auth.visibility and the node scopes
# read. Only the request's "now" is a parameter. A failed compilation is remembered as None.
CACHE_SIZE = 128


@dataclass(frozen=True)
class Plan:
    statement: Select[Any]
    fallbacks: tuple[Fallback, ...]
    point: bool  # a few rows by key and no list (R113)


_statements: OrderedDict[Hashable, Plan | None] = OrderedDict()


def _cached(key: Hashable, build: Callable[[], Plan | None]) -> Plan | None:
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

        def build() -> Plan | None:
            compiler = Compiler(schema, operation, fragments, variables, request.principal, NODE_SCOPES,
                                request.runtime.settings.limits.max_node_ids)
            try:
                statement = compiler.statement()
                return Plan(statement, tuple(compiler.fallbacks), compiler.point_read)
            except Unsupported:
                return None

        key = (context.query, context.operation_name, variables_key(context.variables),
               principal_key(request.principal))
        plan = _cached(key, build) if context.query is not None else build()
        if plan is None:
            return None
        try:
            answer = await request.db.core_scalar(plan.statement, {NOW: request.db.now})
        except Exception as exc:
            if is_outage(exc):
                raise
            # A bug of the compiler must cost a slower answer, not a wrong one: log it, answer by resolvers.
            log.exception("compiled read failed; answering through the resolvers")
            await request.db.session.rollback()
            return None
        if not isinstance(answer, str) or MISSING_TEXT in answer:
            return None  # a non-null object the caller cannot see: the resolvers give their error
        data: dict[str, Any] = orjson.loads(answer)
        if plan.fallbacks:
            return data if await self._fill(data, plan.fallbacks, operation, document) else None
        if context.query is not None:  # R106: the next such request need not be executed at all
            requested = requested_cost(schema, document, context.operation_name, context.variables)
            # Keyed by the operation name the request gave (strawberry answers with the document's own).
            asked = getattr(context, "_provided_operation_name", context.operation_name)
            if isinstance(requested, int):
                name = operation.name.value if operation.name else None
                prepared = prepare(plan.statement, request.runtime.database, request.db.now, requested,
                                   (name, operation.operation.value), request.runtime.settings, point=plan.point)
                if prepared is not None:
                    PREPARED.remember(key_of(context.query, asked, context.variables, request.principal), prepared)
        return data

    async def _fill(self, data: dict[str, Any], fallbacks: tuple[Fallback, ...], operation: OperationDefinitionNode,
                    document: DocumentNode) -> bool:
        """R101: the resolvers' answers in place of the placeholders; False when they cannot be had
        without an error (the whole operation then runs through the resolvers)."""
        places: list[tuple[dict[str, Any], Fallback, str | None]] = []
        _find_placeholders(data, {f.index: f for f in fallbacks}, places)
        if not places:
            return True  # the objects they stood under were not found: nothing to answer
        if len(places) > MOST_PLACES:
            return False
        selections: list[str] = []
        for n, (_, fallback, node_id) in enumerate(places):
            fields = " ".join(print_ast(node) for node in fallback.nodes)
            if fallback.type_name is None:
                selections.append(fields)
            else:
                selections.append(f'{ALIAS}{n}: node(id: {json.dumps(node_id)}) {{ ... on {fallback.type_name} '
                                  f'{{ {fields} }} }}')
        definitions = [print_ast(d) for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
        variables = " ".join(print_ast(v) for v in operation.variable_definitions or ())
        text = f"query{f'({variables})' if variables else ''} {{ {' '.join(selections)} }} {' '.join(definitions)}"
        context = self.execution_context
        result = execute(context.schema._schema, parse(text), context_value=context.context,
                         variable_values=context.variables or {})
        if isawaitable(result):
            result = await result
        assert isinstance(result, ExecutionResult)
        if result.errors or result.data is None:
            return False
        for n, (parent, fallback, _) in enumerate(places):
            if fallback.type_name is None:
                parent[fallback.key] = result.data[fallback.key]
                continue
            found = result.data[f"{ALIAS}{n}"]
            if not isinstance(found, dict):
                return False  # gone since the statement read it: the resolvers answer all of it
            parent[fallback.key] = found[fallback.key]
        return True


MOST_PLACES = 200  # objects whose subtrees the resolvers answer in one execution; beyond, all of it
ALIAS = "bureau_fallback_"


def _find_placeholders(value: Any, fallbacks: dict[int, Fallback],
                       places: list[tuple[dict[str, Any], Fallback, str | None]]) -> None:
    """Every (parent object, fallback, object ID) whose field the statement left to the resolvers."""
    if isinstance(value, list):
        for item in value:
            _find_placeholders(item, fallbacks, places)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict) and FALLBACK_KEY in item:
                fallback = fallbacks[item[FALLBACK_KEY]]
                assert fallback.key == key
                places.append((value, fallback, item.get("id")))
            else:
                _find_placeholders(item, fallbacks, places)
