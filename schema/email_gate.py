"""R51: a signed-in user without an email gives one before anything else (R18: "the user must
give an email when first signing in"), decided once per document before execution, beside
the scope check (schema.scopes.ScopeCheck calls it).

Until the user has an email, a document may select only the fields below: who the viewer
is (`viewer { emailRequired user { ... } }`, not its firms or memberships, which lead into
the firms' data) and `requestEmailChange`, whose link sets the email when it is opened.
Anything else refuses the whole document with a top-level error `extensions.code`
EMAIL_REQUIRED. Deny by default: a field added to the schema is closed here until listed.
"""

from collections.abc import Sequence

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    visit,
)

EMAIL_REQUIRED = "EMAIL_REQUIRED"

OPEN: dict[str, frozenset[str]] = {
    "Query": frozenset({"viewer"}),
    "Viewer": frozenset({"clientId", "scopes", "emailRequired", "user"}),
    "User": frozenset({"id", "name", "email", "status", "hasPersonalIdentityNumber", "loginMethods"}),
    "Mutation": frozenset({"requestEmailChange"}),
    "UserPayload": frozenset({"user", "userErrors"}),
    "UserError": frozenset({"code", "message", "field"}),
}


def is_open(type_name: str, field_name: str) -> bool:
    # Introspection (__schema, __type and their __Type, __Field, ...) and __typename tell nothing of anyone's data.
    return field_name.startswith("__") or type_name.startswith("__") or field_name in OPEN.get(type_name, frozenset())


def closed_fields(schema: GraphQLSchema, document: DocumentNode) -> list[str]:
    """The fields of the document that wait for the user's email."""
    type_info = TypeInfo(schema)
    closed: list[str] = []

    class Collect(Visitor):
        def enter_field(self, node: FieldNode, *_: object) -> None:
            parent = type_info.get_parent_type()
            if parent is None:
                return
            name = get_named_type(parent).name
            if not is_open(name, node.name.value):
                closed.append(f"{name}.{node.name.value}")

    visit(document, TypeInfoVisitor(type_info, Collect()))
    return closed


def email_gate_errors(closed: Sequence[str]) -> list[GraphQLError]:
    """For a caller without an email: EMAIL_REQUIRED unless the document selects only open fields
    (`closed`: closed_fields of the document, which schema.documents keeps with it)."""
    if not closed:
        return []
    return [GraphQLError("Give your email first: ask for it with requestEmailChange and open the link mailed to it. "
                         "Until then only `viewer` can be read.", extensions={"code": EMAIL_REQUIRED})]
