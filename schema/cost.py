"""The static cost of an operation, computed from the document and its variables before any
resolver runs (OWASP GraphQL Cheat Sheet, "Query cost analysis"; the same idea as Shopify's
calculated query cost and GitHub's node limit).

Every field costs one point. A connection costs one point plus its page size times the cost
of what is selected in it, so nesting multiplies: `first` when given, else DEFAULT_PAGE, the
most a page holds without `first` (schema.types.common.page_args). On an interface the dearest
of its types counts. `nodes(ids:)` multiplies by the number of ids. A root mutation field costs
MUTATION_COST more, since it writes. The actual cost counts the same way over what the response
really holds (every key, every list element once).
"""

from collections.abc import AsyncIterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    get_operation_ast,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from auth.budget import Budget
from auth.principal import Principal
from observability import requests
from observability.metrics import RATE_LIMITED
from schema.types.common import DEFAULT_PAGE, MAX_PAGE

MUTATION_COST = 10

_META_FIELDS = {"__schema": SchemaMetaFieldDef, "__type": TypeMetaFieldDef, "__typename": TypeNameMetaFieldDef}


class _Costing:
    def __init__(self, schema: GraphQLSchema, fragments: Mapping[str, FragmentDefinitionNode],
                 variables: VariableValues | None) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        # A fragment's cost on a type does not depend on where it is spread: counting it once
        # keeps a document of fragments that spread each other twice over linear, not exponential.
        self.fragment_costs: dict[tuple[str, str], int] = {}

    def selection_set(self, parent: GraphQLNamedType, selection_set: SelectionSetNode | None) -> int:
        """On an interface, what the dearest of its object types would cost: a result is one of them."""
        if selection_set is None:
            return 0
        if isinstance(parent, GraphQLInterfaceType | GraphQLUnionType):
            return max((self._on(kind, selection_set) for kind in self.schema.get_possible_types(parent)), default=0)
        return self._on(parent, selection_set)

    def _on(self, kind: GraphQLNamedType, selection_set: SelectionSetNode) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(kind, selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is None or self._applies(condition.name.value, kind):
                    total += self._on(kind, selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value, kind)
        return total

    def _applies(self, condition: str, kind: GraphQLNamedType) -> bool:
        on = self.schema.get_type(condition)
        if on is kind:
            return True
        return isinstance(on, GraphQLInterfaceType | GraphQLUnionType) and isinstance(kind, GraphQLObjectType) \
            and self.schema.is_sub_type(on, kind)

    def fragment(self, name: str, kind: GraphQLNamedType) -> int:
        key = (name, kind.name)
        if key not in self.fragment_costs:
            self.fragment_costs[key] = 0  # validation refuses cycles; this only guards the recursion
            definition = self.fragments.get(name)
            if definition is not None and self._applies(definition.type_condition.name.value, kind):
                self.fragment_costs[key] = self._on(kind, definition.selection_set)
        return self.fragment_costs[key]

    def field(self, parent: GraphQLNamedType, node: FieldNode) -> int:
        definition = self._definition(parent, node.name.value)
        if definition is None:  # validation refuses unknown fields; count the field alone
            return 1
        inner = self.selection_set(get_named_type(definition.type), node.selection_set)
        return 1 + self._multiplier(definition, node) * inner

    @staticmethod
    def _definition(parent: GraphQLNamedType, name: str) -> GraphQLField | None:
        if name in _META_FIELDS:
            return _META_FIELDS[name]
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return parent.fields.get(name)
        return None

    def _multiplier(self, definition: GraphQLField, node: FieldNode) -> int:
        """How many times the field's selection can be resolved: its page size or its ids."""
        is_connection = get_named_type(definition.type).name.endswith("Connection") and "first" in definition.args
        if not is_connection and "ids" not in definition.args:
            return 1
        try:
            arguments = get_argument_values(definition, node, self.variables)
        except GraphQLError:  # variables were coerced first, so only a broken document gets here
            arguments = {}
        if is_connection:
            # Without `first` a page holds DEFAULT_PAGE at most (schema.types.common.page_args).
            first = arguments.get("first")
            return first if isinstance(first, int) and 0 <= first <= MAX_PAGE else DEFAULT_PAGE
        ids = arguments.get("ids")
        return len(ids) if isinstance(ids, list) else 1


def _operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    return get_operation_ast(document, operation_name)


def requested_cost(schema: GraphQLSchema, document: DocumentNode, operation_name: str | None,
                   raw_variables: dict[str, Any] | None) -> int | list[GraphQLError]:
    """The operation's cost, or the errors of variables that do not fit their types (execution
    would refuse them before any resolver; nothing to count). Call it on a valid document only."""
    operation = _operation(document, operation_name)
    if operation is None:
        return 0
    variables = get_variable_values(schema, operation.variable_definitions or (), raw_variables or {})
    if isinstance(variables, list):
        return variables
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    costing = _Costing(schema, fragments, variables)
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    return costing.selection_set(root, operation.selection_set) + MUTATION_COST * mutation_fields(
        document, operation_name)


def actual_cost(data: Any, mutation_fields: int = 0) -> int:
    """What a response really holds, counted as requested_cost counts: one per field returned."""
    return _returned(data) + MUTATION_COST * mutation_fields


def _returned(value: Any) -> int:
    # Recursing into containers only, by exact type (graphql-core's data and orjson's are plain dicts
    # and lists): a call and an isinstance per scalar were a fifth of a 100-member read's CPU.
    kind = type(value)
    if kind is dict:
        count, inner_values = len(value), value.values()
    elif kind is list:
        count, inner_values = 0, value
    else:
        return 0
    for inner in inner_values:
        kind = type(inner)
        if kind is dict or kind is list:
            count += _returned(inner)
    return count


def mutation_fields(document: DocumentNode, operation_name: str | None) -> int:
    operation = _operation(document, operation_name)
    if operation is None or operation.operation != OperationType.MUTATION:
        return 0
    return sum(1 for s in operation.selection_set.selections if isinstance(s, FieldNode))


def budget_key(principal: Principal, request: Any) -> str:
    """Whose bucket an operation draws on: the OAuth client and the user it acts for; a caller
    without a token (introspection when BUREAU_INTROSPECTION=on) by its address."""
    if not principal.authenticated:
        client = getattr(request, "client", None)
        return f"anonymous:{client.host if client else '-'}"
    return f"{principal.client_id}:{principal.user_id if principal.user_id is not None else '-'}"


def cost_extension(requested: int, actual: int, available: float, budget: Budget) -> dict[str, Any]:
    """`extensions.cost`, Shopify's shape: both costs and the caller's budget as it stands."""
    return {"requestedQueryCost": requested, "actualQueryCost": actual,
            "throttleStatus": {"maximumAvailable": budget.capacity, "currentlyAvailable": int(available),
                               "restoreRate": budget.rate}}


def answered_extensions(requested: int, actual: int, available: float, budget: Budget) -> dict[str, Any]:
    """The `extensions` of an answer given without execution (a prepared read, a cached one), as an
    executed query has them: the request's id (R91), then the cost."""
    extensions: dict[str, Any] = {}
    request_id = requests.current_id()
    if request_id is not None:
        extensions["requestId"] = request_id
    extensions["cost"] = cost_extension(requested, actual, available, budget)
    return extensions


class QueryCost(SchemaExtension):
    """Refuses an operation dearer than BUREAU_COST_LIMIT (QUERY_TOO_COSTLY) or than what is left
    of the caller's budget (RATE_LIMITED, HTTP 429 with Retry-After), before it runs; reports
    both costs and the budget in `extensions.cost` of every response."""

    def __init__(self, *, execution_context: ExecutionContext | None = None) -> None:
        super().__init__(execution_context=execution_context)  # type: ignore[arg-type]
        self.requested = 0
        self.taken = 0
        self.actual = 0
        self.available: float | None = None

    def _budget(self) -> tuple[Budget, str]:
        context = self.execution_context.context
        return context.runtime.budget, budget_key(context.principal, context.request)

    async def on_validate(self) -> AsyncIterator[None]:
        # ScopeCheck, before this in the list, has validated the document: only a valid one that
        # the caller may run is costed, and the verdict must be in before strawberry looks.
        context = self.execution_context
        if context.pre_execution_errors == [] and context.graphql_document is not None:
            context.pre_execution_errors = await self._refusals(context)
        yield

    async def _refusals(self, context: ExecutionContext) -> list[GraphQLError]:
        assert context.graphql_document is not None
        cost = requested_cost(context.schema._schema, context.graphql_document, context.operation_name,
                              context.variables)
        if isinstance(cost, list):
            return []  # execution refuses the variables before any resolver runs
        self.requested = cost
        limit = context.context.runtime.settings.cost_limit
        if cost > limit:
            return [GraphQLError(f"This operation would cost {cost} points; the most one may cost is {limit}. "
                                 "Ask for smaller pages (`first`) or fewer nested connections.",
                                 extensions={"code": "QUERY_TOO_COSTLY", "cost": cost, "limit": limit})]
        budget, key = self._budget()
        throttle = await budget.take(key, cost)
        self.available = throttle.available
        if throttle.allowed:
            self.taken = cost
            return []
        RATE_LIMITED.labels("query_budget").inc()
        response = context.context.response
        if response is not None:
            response.status_code = 429
            response.headers["Retry-After"] = str(throttle.retry_after)
        return [GraphQLError(f"This operation costs {cost} points and the budget holds {int(throttle.available)}; "
                             f"it refills at {budget.rate} points a second.",
                             extensions={"code": "RATE_LIMITED", "cost": cost,
                                         "available": int(throttle.available),
                                         "retryAfter": throttle.retry_after})]

    async def on_execute(self) -> AsyncIterator[None]:
        yield
        context = self.execution_context
        if not self.taken or context.graphql_document is None:
            return
        data = getattr(context.result, "data", None)
        self.actual = min(self.taken, actual_cost(data, mutation_fields(context.graphql_document,
                                                                        context.operation_name)))
        budget, key = self._budget()
        if self.taken > self.actual:  # as Shopify does: the points a query did not use come back
            self.available = await budget.give_back(key, self.taken - self.actual)

    async def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        if context is None or not hasattr(context, "runtime"):
            return {}
        budget, key = self._budget()
        if self.available is None:  # refused before costing: show the budget as it stands
            self.available = (await budget.take(key, 0)).available
        return {"cost": cost_extension(self.requested, self.actual, self.available, budget)}
