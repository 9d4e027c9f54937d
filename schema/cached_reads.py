"""Tells the response cache (web.response_cache) which operations are queries: only a query's
answer may be kept, never a mutation's or a subscription's."""

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType


class MarkQueries(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        # Runs only for a document that parsed, validated and was allowed (scopes, cost).
        context = self.execution_context.context
        if hasattr(context, "is_query"):
            context.is_query = self.execution_context.operation_type is OperationType.QUERY
        yield
