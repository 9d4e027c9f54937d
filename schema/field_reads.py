"""Enforces auth.policy.FIELD_READS: the fields whose reading carries a rule of its own.

Each listed field's resolver is wrapped once, when the schema is built, so the rule is
checked on that field only and costs nothing elsewhere. A caller the rule refuses reads
null, an empty connection, or, for a field that cannot be null, a FORBIDDEN error there.
tests/unit/test_schema_file.py fails when the table names a field that does not exist.
"""

from collections.abc import Callable
from typing import Any

from graphql import GraphQLNonNull, GraphQLObjectType, GraphQLResolveInfo, default_field_resolver, get_named_type

from auth.policy import FIELD_READS, Action, Forbidden, is_allowed, tenancy_of
from schema.types.common import list_connection, no_rows

Resolver = Callable[..., Any]


def _refused(field_type: Any, action: Action) -> Callable[[], Any]:
    if not isinstance(field_type, GraphQLNonNull):
        return lambda: None
    if get_named_type(field_type).name.endswith("Connection"):
        return lambda: list_connection([], False, False, no_rows)

    def forbidden() -> Any:
        raise Forbidden(f"not allowed to read this field ({action.name.lower().replace('_', ' ')})")

    return forbidden


def _guarded(resolve: Resolver, action: Action, refused: Callable[[], Any]) -> Resolver:
    # Synchronous either way: an async resolver's awaitable is returned for graphql-core to await.
    def guarded(root: Any, info: GraphQLResolveInfo, **kwargs: Any) -> Any:
        if is_allowed(info.context.principal, action, tenancy_of(root.model)):
            return resolve(root, info, **kwargs)
        return refused()
    return guarded


def guard_field_reads(type_map: dict[str, Any]) -> None:
    for (type_name, field_name), action in FIELD_READS.items():
        graphql_type = type_map[type_name]
        assert isinstance(graphql_type, GraphQLObjectType)
        field = graphql_type.fields[field_name]
        field.resolve = _guarded(field.resolve or default_field_resolver, action, _refused(field.type, action))
