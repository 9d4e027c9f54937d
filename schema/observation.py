"""Tells the request's record (observability.requests) which operation ran and which error codes
it met, traces the operation as a span of its own, and answers the request's id in
`extensions.requestId` (R91, R93). First in the schema's extensions: it finishes last, after
ErrorCodes has given every error its code."""

from collections.abc import Iterator
from typing import Any

from graphql import OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from observability import requests, tracing


class Observation(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        if requests.current() is None:
            # A subscription's operation on a WebSocket: no HTTP request of its own, and the span would
            # outlive the task that opened it.
            yield
            return
        with tracing.span("graphql.operation") as span:
            yield
            name, kind = self._operation()
            requests.note_operation(name, kind)
            name = requests.operation_name(name)
            record = requests.current()
            if span.is_recording() and record is not None:
                span.update_name(f"{kind or 'graphql'} {name or '(anonymous)'}")
                if name is not None:
                    span.set_attribute("graphql.operation.name", name)
                if kind is not None:
                    span.set_attribute("graphql.operation.type", kind)
                span.set_attribute("bureau.request_id", record.request_id)
            result = context.result
            if result is not None and result.errors:
                requests.note_errors((error.extensions or {}).get("code") for error in result.errors)

    def _operation(self) -> tuple[str | None, str | None]:
        """The operation the document holds by the name asked for (or its only one); a name it
        does not hold is no name."""
        document = self.execution_context.graphql_document
        if document is None:
            return None, None
        wanted = self.execution_context.operation_name
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                name = definition.name.value if definition.name else None
                if wanted is None or name == wanted:
                    return name, definition.operation.value
        return None, None

    def get_results(self) -> dict[str, Any]:
        request_id = requests.current_id()
        return {"requestId": request_id} if request_id is not None else {}
